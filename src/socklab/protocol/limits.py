"""Default limits of the protocol core, each with the precedent it follows."""

# asyncio's StreamReader refuses lines over 64 KiB (asyncio.streams._DEFAULT_LIMIT = 2**16);
# a converter message is a line of text typed by a human, so the same bound is generous.
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024

# The lecture's naive server receives the command with recv(2) and the text with recv(1500):
# 1500 bytes is Ethernet's MTU, the slide's guess at "one message".
RAW_COMMAND_BYTES = 2
RAW_RECEIVE_BYTES = 1500

# Largest UDP payload over IPv4: 65,535 - 8 (UDP header) - 20 (IPv4 header), RFC 768 / RFC 791.
MAX_UDP_PAYLOAD_BYTES = 65_507

# Bad requests answered in a row before the connection is closed (Postfix closes an SMTP session
# after 20 errors, smtpd_hard_error_limit). An error reply is ~50 bytes for a 1-byte request (an
# empty line): without a limit, one 64 KiB read of newlines would queue ~3 MB of replies.
MAX_ERRORS_IN_A_ROW = 20
