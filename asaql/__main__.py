"""``python -m asaql`` runs the command line."""

from asaql.cli.main import main

raise SystemExit(main())
