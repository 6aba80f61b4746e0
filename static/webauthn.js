// Passkeys: the only feature that needs JavaScript. A form marked data-passkey="create" or "get" starts hidden;
// this file shows it (and hides its "needs JavaScript" note), and on submit runs the WebAuthn ceremony: it asks the
// server for options (data-passkey-options, a POST with the form's CSRF token), calls the browser, puts the answer
// in the form's hidden "credential" field, then submits the form for real (htmx or a plain POST).
"use strict";

const b64urlToBytes = (value) => {
  const base64 = value.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(value.length / 4) * 4, "=");
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)).buffer;
};

const bytesToB64url = (buffer) =>
  btoa(String.fromCharCode(...new Uint8Array(buffer))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

function decodeOptions(options) {
  const publicKey = { ...options, challenge: b64urlToBytes(options.challenge) };
  if (publicKey.user) publicKey.user = { ...publicKey.user, id: b64urlToBytes(publicKey.user.id) };
  for (const list of ["excludeCredentials", "allowCredentials"]) {
    if (publicKey[list]) publicKey[list] = publicKey[list].map((c) => ({ ...c, id: b64urlToBytes(c.id) }));
  }
  return publicKey;
}

function encodeCredential(credential) {
  const r = credential.response;
  const response = { clientDataJSON: bytesToB64url(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = bytesToB64url(r.attestationObject);
    response.transports = typeof r.getTransports === "function" ? r.getTransports() : [];
  } else {
    response.authenticatorData = bytesToB64url(r.authenticatorData);
    response.signature = bytesToB64url(r.signature);
    if (r.userHandle) response.userHandle = bytesToB64url(r.userHandle);
  }
  return JSON.stringify({
    id: credential.id, rawId: bytesToB64url(credential.rawId), type: credential.type, response,
    authenticatorAttachment: credential.authenticatorAttachment || undefined,
    clientExtensionResults: credential.getClientExtensionResults(),
  });
}

const MESSAGES = {
  NotAllowedError: "The passkey request was cancelled or timed out. Try again, or choose another way.",
  InvalidStateError: "This passkey is already saved for your account.",
  SecurityError: "Passkeys can't be used at this address.",
};

function showError(form, message) {
  const box = form.querySelector("[data-passkey-error]");
  if (!box) return;
  box.textContent = message;
  box.setAttribute("role", "alert");
  box.hidden = false;
}

async function ceremony(form) {
  const token = form.querySelector("input[name=csrf_token]").value;
  const reply = await fetch(form.dataset.passkeyOptions, {
    method: "POST", headers: { "X-CSRF-Token": token }, body: new FormData(form), credentials: "same-origin",
  });
  const data = await reply.json();
  if (!reply.ok) throw new Error(data.error || "The passkey step could not start.");
  for (const [name, value] of Object.entries(data.fields || {})) form.querySelector(`input[name=${name}]`).value = value;
  const publicKey = decodeOptions(data.publicKey);
  const credential = form.dataset.passkey === "create"
    ? await navigator.credentials.create({ publicKey })
    : await navigator.credentials.get({ publicKey });
  form.querySelector("input[name=credential]").value = encodeCredential(credential);
}

// Capture phase on the document: runs before htmx's own submit handling, which then sees the filled-in form.
document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.passkey) return;
  const field = form.querySelector("input[name=credential]");
  if (field.value) return; // the answer is in: let the real submission through
  event.preventDefault();
  event.stopImmediatePropagation();
  if (form.dataset.busy) return;
  form.dataset.busy = "1";
  try {
    await ceremony(form);
    delete form.dataset.busy;
    form.requestSubmit();
  } catch (error) {
    delete form.dataset.busy;
    showError(form, MESSAGES[error.name] || error.message || "The passkey didn't work. Try again.");
  }
}, true);

function enhancePasskeys(root) {
  const supported = typeof window.PublicKeyCredential === "function" && window.isSecureContext;
  for (const form of root.querySelectorAll("form[data-passkey]")) {
    const note = form.parentElement.querySelector("[data-passkey-nojs]");
    if (supported) {
      form.hidden = false;
      if (note) note.hidden = true;
    } else if (note) {
      note.textContent = "This browser can't use passkeys here. Choose another way.";
    }
  }
}

document.addEventListener("DOMContentLoaded", () => enhancePasskeys(document));
document.addEventListener("htmx:after:swap", () => enhancePasskeys(document));
