"""HTTP faces of the server: one package or module per API, plus the shared edge."""
