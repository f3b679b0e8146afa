from tools.grafana import main

raise SystemExit(main())
