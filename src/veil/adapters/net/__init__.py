"""How bytes leave a node: TCP, SOCKS, Tor (control port, launch), and the connection policy."""
