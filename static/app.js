// Optional enhancements only: every page works without this file (and without htmx).
"use strict";
