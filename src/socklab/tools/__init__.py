"""Tools that look at sockets and packets: ports (socket table) and capture (packets)."""
