from rmm_tray.cli import main

raise SystemExit(main())
