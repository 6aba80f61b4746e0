"""Registration and the password policy (R-P1…R-P7, R-P10, R-V5, R-C7, R-L5), for each kind of client."""

from __future__ import annotations

import re
from typing import Any

import bcrypt
import pytest
from starlette.testclient import TestClient

from tests.support import CLIENT_KINDS, PARTIAL, PASSWORD, csrf, login, register, sql
from webapp.identity.passwords import prehash
from webapp.settings import Settings

# 15 code points each; none is on the blocklist and none contains a username used here.
FIFTEEN = "qv7-mzr-kt2-wpx"
FOURTEEN = FIFTEEN[:-1]
EMOJI = "\U0001f98a"  # one code point, four UTF-8 bytes


def user_count(settings: Settings) -> int:
    return int(sql(settings, "SELECT count(*) FROM users")[0][0])


def assert_registered(r: Any) -> None:
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/login?notice=registered"


def assert_password_error(r: Any, message: str) -> None:
    assert r.status_code == 422, r.text[:500]
    assert message in r.text
    assert 'aria-invalid="true"' in r.text


# --- the three clients -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["no-js", "boosted"])
def test_register_form_is_a_full_page_for_plain_and_boosted_requests(client: TestClient, kind: str) -> None:
    r = client.get("/register", headers=CLIENT_KINDS[kind])
    assert r.status_code == 200
    assert "<html" in r.text
    assert 'id="register"' in r.text
    assert r.headers["cache-control"] == "no-store"
    assert "HX-Request-Type" in r.headers["vary"]


def test_register_form_partial_request_gets_the_fragment_only(client: TestClient) -> None:
    r = client.get("/register", headers=PARTIAL)
    assert r.status_code == 200
    assert "<html" not in r.text
    assert 'id="register"' in r.text
    assert 'name="csrf_token"' in r.text
    assert r.headers["vary"] == "HX-Request, HX-Request-Type"


def test_register_without_js_redirects_303_to_login(client: TestClient, settings: Settings) -> None:
    assert_registered(register(client))
    assert user_count(settings) == 1


@pytest.mark.parametrize("kind", ["partial", "boosted"])
def test_register_over_htmx_leaves_the_flow_with_hx_redirect(client: TestClient, settings: Settings, kind: str) -> None:
    """R-H3: htmx requests crossing to the sign-in page get 200 + HX-Redirect (a 3xx's HX-* headers are unseen)."""
    r = register(client, headers=CLIENT_KINDS[kind])
    assert r.status_code == 200
    assert r.headers["hx-redirect"] == "/login?notice=registered"
    assert "location" not in r.headers
    assert user_count(settings) == 1


@pytest.mark.parametrize("kind", ["no-js", "boosted"])
def test_register_invalid_input_is_a_422_full_page(client: TestClient, settings: Settings, kind: str) -> None:
    r = register(client, password=FOURTEEN, headers=CLIENT_KINDS[kind])
    assert r.status_code == 422
    assert "<html" in r.text
    assert "There is a problem" in r.text
    assert user_count(settings) == 0


def test_register_invalid_input_partial_is_a_422_fragment(client: TestClient, settings: Settings) -> None:
    r = register(client, password=FOURTEEN, headers=PARTIAL)
    assert r.status_code == 422
    assert "<html" not in r.text
    assert r.text.lstrip().startswith("<title>Error: ")
    assert 'id="register"' in r.text
    assert user_count(settings) == 0


def test_register_keeps_typed_username_but_never_echoes_the_password(client: TestClient) -> None:
    r = register(client, password=FOURTEEN)
    assert 'value="alice"' in r.text
    assert FOURTEEN not in r.text


def test_signed_in_user_visiting_register_is_sent_to_profile(client: TestClient) -> None:
    register(client)
    login(client)
    r = client.get("/register")
    assert r.status_code == 303
    assert r.headers["location"] == "/profile"


# --- R-P1 length --------------------------------------------------------------------------------------------------


def test_r_p1_fourteen_characters_refused_with_length_error_and_no_row(client: TestClient, settings: Settings) -> None:
    assert_password_error(register(client, password=FOURTEEN), "Use at least 15 characters; this one has 14.")
    assert user_count(settings) == 0


def test_r_p1_fifteen_characters_accepted(client: TestClient, settings: Settings) -> None:
    assert_registered(register(client, password=FIFTEEN))
    assert user_count(settings) == 1


def test_r_p1_fifteen_emoji_accepted(client: TestClient, settings: Settings) -> None:
    assert_registered(register(client, password=EMOJI * 15))
    assert login(client, password=EMOJI * 15).status_code == 303


def test_r_p1_fourteen_emoji_refused(client: TestClient, settings: Settings) -> None:
    assert_password_error(register(client, password=EMOJI * 14), "this one has 14")
    assert user_count(settings) == 0


def test_r_p1_length_is_counted_after_nfkc(client: TestClient, settings: Settings) -> None:
    """'ﬁ' (one code point) is 'fi' after NFKC: 14 typed code points count as 15, and 'fi' signs in too (R-P4)."""
    typed = "qv7-mzr-kt2-w\ufb01"
    assert len(typed) == 14
    assert_registered(register(client, password=typed))
    assert login(client, password="qv7-mzr-kt2-wfi").status_code == 303


def test_r_p1_config_minimum_below_eight_is_refused_at_startup(tmp_path: Any) -> None:
    from webapp.settings import ConfigError, load_settings

    with pytest.raises(ConfigError, match="PASSWORD_MIN_LENGTH must be at least 8"):
        load_settings(environ={"PASSWORD_MIN_LENGTH": "7", "INSTANCE_DIR": str(tmp_path)},
                      dotenv=tmp_path / "does-not-exist.env")


# --- R-P2, R-P3 content ------------------------------------------------------------------------------------------


def test_r_p2_no_composition_rules_passphrase_accepted(client: TestClient, settings: Settings) -> None:
    assert_registered(register(client, password="correct horse battery staple"))
    assert login(client, password="correct horse battery staple").status_code == 303


def test_r_p3_common_password_refused_with_reason_and_no_row(client: TestClient, settings: Settings) -> None:
    assert_password_error(register(client, password="passwordpassword"), "too common")
    assert user_count(settings) == 0


def test_r_p3_password_containing_username_refused(client: TestClient, settings: Settings) -> None:
    assert_password_error(register(client, "alice", password="alice-password-1"), "contains your username")
    assert_password_error(register(client, "alice", password="my-ALICE-is-long-enough"), "contains your username")
    assert user_count(settings) == 0


def test_r_p3_password_containing_app_name_refused(client: TestClient, settings: Settings) -> None:
    assert_password_error(register(client, password=f"my {settings.app_name} pass"), "this site&#39;s name")
    assert user_count(settings) == 0


def test_register_mismatched_confirmation_refused(client: TestClient, settings: Settings) -> None:
    token = csrf(client, "/register")
    r = client.post("/register", data={"csrf_token": token, "username": "alice", "email": "a@example.com",
                                        "password": PASSWORD, "password_confirm": PASSWORD + "x"})
    assert r.status_code == 422
    assert "The two passwords don&#39;t match." in r.text
    assert user_count(settings) == 0


# --- R-P4, R-P6 long passwords -------------------------------------------------------------------------------------


def test_r_p4_sixty_four_characters_register_and_sign_in(client: TestClient) -> None:
    password = ("plum-orbit-" * 6)[:64]
    assert len(password) == 64
    assert_registered(register(client, password=password))
    assert login(client, password=password).status_code == 303


def test_r_p4_one_extra_character_fails(client: TestClient) -> None:
    password = ("plum-orbit-" * 6)[:64]
    register(client, password=password)
    r = login(client, password=password + "x")
    assert r.status_code == 422
    assert "Incorrect username or password." in r.text


def test_r_p4_first_72_characters_of_a_100_character_password_fail(client: TestClient) -> None:
    """No bcrypt 72-byte truncation: a prefix is a different password."""
    password = ("velvet-canyon-" * 8)[:100]
    assert_registered(register(client, password=password))
    assert login(client, password=password[:72]).status_code == 422
    assert login(client, password=password).status_code == 303


def test_r_p4_trailing_space_is_part_of_the_password(client: TestClient) -> None:
    register(client)
    assert login(client, password=PASSWORD + " ").status_code == 422
    assert login(client, password=" " + PASSWORD).status_code == 422
    assert login(client, password=PASSWORD.upper()).status_code == 422
    assert login(client, password=PASSWORD).status_code == 303


def test_r_p4_128_accepted_and_129_characters_refused_at_register(client: TestClient, settings: Settings) -> None:
    long_password = ("amber-quilt-" * 11)[:129]
    assert_password_error(register(client, password=long_password), "Use at most 128 characters.")
    assert user_count(settings) == 0
    assert_registered(register(client, password=long_password[:128]))
    assert login(client, password=long_password[:128]).status_code == 303


def test_r_p6_sixty_four_emoji_256_bytes_register_and_sign_in(client: TestClient) -> None:
    password = EMOJI * 64
    assert len(password.encode()) == 256
    assert_registered(register(client, password=password))
    assert login(client, password=EMOJI * 63).status_code == 422
    assert login(client, password=password).status_code == 303


def test_r_p6_prehash_gives_bcrypt_64_ascii_bytes() -> None:
    for password in ("short", "x" * 1000, EMOJI * 64):
        out = prehash(b"p" * 32, password)
        assert len(out) == 64
        assert out.isascii()


def test_r_p6_another_pepper_fails_checkpw() -> None:
    hashed = bcrypt.hashpw(prehash(b"a" * 32, PASSWORD), bcrypt.gensalt(4))
    assert bcrypt.checkpw(prehash(b"a" * 32, PASSWORD), hashed)
    assert not bcrypt.checkpw(prehash(b"b" * 32, PASSWORD), hashed)


def test_r_p6_prehash_is_nfkc_stable() -> None:
    assert prehash(b"k" * 32, "\ufb01le-cabinet-door") == prehash(b"k" * 32, "file-cabinet-door")


# --- R-P5 storage -------------------------------------------------------------------------------------------------


def test_r_p5_stored_hash_is_bcrypt_2b_with_configured_cost_and_no_plaintext(client: TestClient,
                                                                              settings: Settings) -> None:
    register(client)
    [(password_hash, pepper_id)] = sql(settings, "SELECT password_hash, pepper_id FROM users")
    assert re.fullmatch(rf"\$2b\${settings.bcrypt_rounds:02d}\$[./A-Za-z0-9]{{53}}", password_hash)
    assert pepper_id == settings.pepper_id
    assert PASSWORD not in password_hash
    assert bcrypt.checkpw(prehash(settings.pepper, PASSWORD), password_hash.encode())


def test_r_p5_default_cost_is_at_least_ten() -> None:
    assert Settings().bcrypt_rounds >= 10


# --- R-P7 form attributes -----------------------------------------------------------------------------------------


def test_r_p7_register_password_fields_are_new_password_and_allow_paste(client: TestClient) -> None:
    html = client.get("/register").text
    inputs = re.findall(r"<input[^>]*>", html)
    passwords = [i for i in inputs if 'type="password"' in i]
    assert len(passwords) == 2
    assert all('autocomplete="new-password"' in i for i in passwords)
    assert 'autocomplete="username"' in html
    for handler in ("onpaste", "oncopy", "ondrop", "oncut"):
        assert handler not in html


def test_r_p7_login_password_field_is_current_password_and_allows_paste(client: TestClient) -> None:
    html = client.get("/login").text
    passwords = [i for i in re.findall(r"<input[^>]*>", html) if 'type="password"' in i]
    assert len(passwords) == 1
    assert 'autocomplete="current-password"' in passwords[0]
    for handler in ("onpaste", "oncopy", "ondrop", "oncut"):
        assert handler not in html


# --- R-P10 no seeded accounts -------------------------------------------------------------------------------------


def test_r_p10_fresh_database_has_no_users_and_admin_admin_fails(client: TestClient, settings: Settings) -> None:
    assert user_count(settings) == 0
    r = login(client, "admin", "admin")
    assert r.status_code == 422
    assert "Incorrect username or password." in r.text


# --- R-V5 usernames -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("taken_as", ["Alice", "ALICE", "\uff41\uff4c\uff49\uff43\uff45"])
def test_r_v5_username_is_nfkc_casefolded_before_uniqueness(client: TestClient, settings: Settings,
                                                            taken_as: str) -> None:
    assert_registered(register(client, "alice"))
    r = register(client, taken_as, email="other@example.com")
    assert r.status_code == 422
    assert "That username is taken; choose another." in r.text
    assert user_count(settings) == 1


def test_r_v5_signing_in_with_other_case_finds_the_same_account(client: TestClient) -> None:
    register(client, "alice")
    assert login(client, "ALICE").status_code == 303


@pytest.mark.parametrize("username", ["ab", "a" * 33, "al ice", "al/ice", "al'ice", "élise", "' OR 1=1 --"])
def test_r_v5_usernames_outside_the_pattern_refused(client: TestClient, settings: Settings, username: str) -> None:
    r = register(client, username)
    assert r.status_code == 422
    assert "Use 3 to 32 characters: letters, digits, dots, hyphens or underscores." in r.text
    assert user_count(settings) == 0


def test_r_v5_extra_fields_are_ignored(client: TestClient, settings: Settings) -> None:
    token = csrf(client, "/register")
    r = client.post("/register", data={
        "csrf_token": token, "username": "alice", "email": "a@example.com", "password": PASSWORD,
        "password_confirm": PASSWORD, "mfa_enabled": "1", "is_admin": "1", "phone_e164": "+14155550123",
        "session_epoch": "99", "id": "42",
    })
    assert_registered(r)
    [(uid, mfa, phone, epoch)] = sql(settings, "SELECT id, mfa_enabled, phone_e164, session_epoch FROM users")
    assert (uid, bool(mfa), phone, epoch) == (1, False, None, 0)


def test_register_email_is_required_and_checked(client: TestClient, settings: Settings) -> None:
    r = register(client, email="not-an-email")
    assert r.status_code == 422
    assert "Enter an email address like name@example.com." in r.text
    assert user_count(settings) == 0


# --- R-C7 escaping ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["no-js", "partial"])
def test_r_c7_script_username_is_escaped_on_the_error_page(client: TestClient, settings: Settings, kind: str) -> None:
    r = register(client, "<script>alert(1)</script>", headers=CLIENT_KINDS[kind])
    assert r.status_code == 422
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
    assert "<script>alert(1)" not in r.text
    assert user_count(settings) == 0


# --- R-L5 registration rate limit ---------------------------------------------------------------------------------


def test_r_l5_registrations_per_ip_are_limited_with_429_and_retry_after(client: TestClient,
                                                                        settings: Settings) -> None:
    for i in range(settings.registrations_per_ip_per_hour):
        r = register(client, f"user{i}", password=FOURTEEN)  # failed attempts count too
        assert r.status_code == 422
    r = register(client, "latecomer", email="late@example.com")
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) > 0
    assert "Too many new accounts from this network" in r.text
    assert user_count(settings) == 0


def test_r_l5_partial_429_is_a_fragment_stating_the_wait(client: TestClient, settings: Settings) -> None:
    for i in range(settings.registrations_per_ip_per_hour):
        register(client, f"user{i}", password=FOURTEEN)
    r = register(client, "latecomer", headers=PARTIAL)
    assert r.status_code == 429
    assert "<html" not in r.text
    assert re.search(r"Try again in \d+ minutes", r.text)

