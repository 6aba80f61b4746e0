"""Entry point: `python -m bench [--postgres] [--quick] …` (see bench/README.md)."""

from bench.run import main

raise SystemExit(main())
