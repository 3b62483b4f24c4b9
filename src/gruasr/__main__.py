"""`python -m gruasr` is the same as the `gruasr` console script."""

from gruasr.cli.main import main

raise SystemExit(main())
