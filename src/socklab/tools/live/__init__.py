"""The live view (`socklab live`): sockets and packets on one page in the browser, as they happen.

Layout: `model` (pure: packets and socket rows in, JSON-ready dicts out, bounded rings), `server`
(aiohttp: the page, a WebSocket of batched updates, the pcap export; the capture and the socket
table feed the model) and `static/` (the page: HTML, CSS and a JavaScript module, no build step,
nothing fetched from elsewhere). aiohttp comes with the `live` extra; only `server` imports it.
"""
