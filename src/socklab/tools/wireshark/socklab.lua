-- socklab.lua: Wireshark dissectors for the protocols of socklab (docs/PROTOCOL.md).
--
--   socklab_converter  the upper/lowercase converter (TCP port 50000: line or length framing,
--                      messages reassembled across segments; UDP port 50000: one datagram per
--                      message, with or without the `#<id> ` request id) and the lecture's
--                      uppercase service (port 12000: one segment or datagram per sentence)
--   socklab_chat       the chat's frames (4-byte big-endian length, JSON header line, body)
--
-- Install: `socklab wireshark install` (or copy this file into Wireshark's personal Lua plugins
-- folder); try without installing: `tshark -X lua_script:socklab.lua -r capture.pcapng`.
-- Other ports are found by heuristics (a greeting, a `U:`/`L:`/`C:` request, a chat frame) or
-- with Decode As; the ports and the TCP framing are preferences (Edit > Preferences >
-- Protocols). docs/WIRESHARK.md describes the fields and the heuristics.
--
-- Everything here reads bytes a peer chose: every length is bounded before it is used, and text
-- is shown through Wireshark's own escaping (add_packet_field with ENC_UTF_8).

local LIMIT = 65536           -- socklab's longest message (asyncio's 64 KiB line limit)
local HEADER_BYTES = 4        -- the length framing's big-endian length
local CHAT_HEADER_LIMIT = 4096
local MAX_ID_DIGITS = 20
local INFO_TEXT_CHARS = 40    -- text shown in the Info column, per message
local GREETING = "Hi I'm your upper/lowercase converter. Message format U|L:<message>"

local MAX_UINT64 = "18446744073709551615"

------------------------------------------------------------------------------------------------
-- Small pure helpers

local function digits_to_uint64(digits)
    -- A decimal string of at most 20 digits as a UInt64, or nil when it does not fit.
    if #digits > 20 or (#digits == 20 and digits > MAX_UINT64) then
        return nil
    end
    local value = UInt64(0)
    for i = 1, #digits do
        value = value * 10 + tonumber(digits:sub(i, i))
    end
    return value
end

local function shorten(text)
    -- Text for the Info column: cut first (a message may be 64 KiB), on a UTF-8 character
    -- boundary, then control characters made visible.
    local cut = #text > INFO_TEXT_CHARS
    if cut then
        local stop = INFO_TEXT_CHARS
        while stop > 1 and (text:byte(stop + 1) or 0) >= 0x80 and text:byte(stop + 1) < 0xC0 do
            stop = stop - 1
        end
        text = text:sub(1, stop)
    end
    text = text:gsub("%c", function(c)
        return string.format("\\x%02x", c:byte())
    end)
    return cut and (text .. "…") or text
end

local function looks_like_text(s)
    -- printable ASCII, tabs and line ends: what a line-framed peer or HTTP sends
    return s:find("^[\9\10\13\32-\126]+$") ~= nil
end

local function format_count(n)
    -- 65536 -> "65,536", as socklab writes numbers.
    local s = tostring(n)
    local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
    return (out:gsub("^,", ""))
end

-- Where each TCP stream/direction broke (an over-long message, an impossible length header):
-- after it the stream cannot be resynchronised, as socklab's server knows (it closes).
local broken = {}
-- Server endpoints learned from what they sent (a greeting) or received (a request).
local servers = {}
-- TCP stream -> the framing its first message used: a server speaks one framing, so after a
-- length-framed greeting a text "header" is a bad header, not a line.
local framing_of = {}

local function endpoint(address, port)
    return tostring(address) .. "|" .. tostring(port)
end

------------------------------------------------------------------------------------------------
-- socklab_converter

local conv = Proto("socklab_converter", "socklab upper/lowercase converter")

local cf = {
    command = ProtoField.string("socklab_converter.command", "Command",
        "U, L, C, E or greeting"),
    text = ProtoField.string("socklab_converter.text", "Text",
        "the text of a request, a reply or the greeting"),
    request_id = ProtoField.uint64("socklab_converter.request_id", "Request id",
        base.DEC, nil, nil, "UDP: the #<id> prefix the reply echoes"),
    error = ProtoField.string("socklab_converter.error", "Error",
        "the reason of an E: reply"),
    framing = ProtoField.string("socklab_converter.framing", "Framing",
        "line, length, raw, datagram or upper"),
    length = ProtoField.uint32("socklab_converter.length", "Length header", base.DEC),
    reply = ProtoField.bool("socklab_converter.reply", "Reply", base.NONE, nil, nil,
        "sent by the server (when the server's side is known)"),
}
conv.fields = { cf.command, cf.text, cf.request_id, cf.error, cf.framing, cf.length, cf.reply }

local ce = {
    too_long = ProtoExpert.new("socklab_converter.too_long",
        "Message over socklab's 65,536-byte limit", expert.group.MALFORMED, expert.severity.ERROR),
    bad_header = ProtoExpert.new("socklab_converter.bad_header",
        "Length header that cannot start a message", expert.group.MALFORMED, expert.severity.ERROR),
    no_newline = ProtoExpert.new("socklab_converter.no_newline",
        "Last line without a newline", expert.group.PROTOCOL, expert.severity.WARN),
    unknown_command = ProtoExpert.new("socklab_converter.unknown_command",
        "Request with an unknown command", expert.group.PROTOCOL, expert.severity.WARN),
    bad_id = ProtoExpert.new("socklab_converter.bad_id",
        "Request id over 2^64-1 (18446744073709551615)", expert.group.MALFORMED, expert.severity.WARN),
    after_break = ProtoExpert.new("socklab_converter.after_break",
        "Data after the stream lost its message boundaries", expert.group.SEQUENCE,
        expert.severity.NOTE),
    error_reply = ProtoExpert.new("socklab_converter.error_reply",
        "Error reply", expert.group.RESPONSE_CODE, expert.severity.NOTE),
}
conv.experts = {
    ce.too_long, ce.bad_header, ce.no_newline, ce.unknown_command, ce.bad_id,
    ce.after_break, ce.error_reply,
}

local FRAMINGS = {
    { 1, "auto", 0 },
    { 2, "line", 1 },
    { 3, "length", 2 },
    { 4, "raw", 3 },
}
local AUTO, LINE, LENGTH, RAW = 0, 1, 2, 3

conv.prefs.port = Pref.uint("Converter port (TCP and UDP)", 50000,
    "the converter's port; other ports are found by the heuristic")
conv.prefs.upper_port = Pref.uint("Uppercase service port (TCP and UDP)", 12000,
    "the lecture's uppercase service: one sentence per segment or datagram")
conv.prefs.framing = Pref.enum("TCP framing", AUTO,
    "auto: the first message of a TCP stream decides, a length header if it starts with byte "
    .. "0x00, else a line; line: messages end in \\n; length: a 4-byte big-endian length first; "
    .. "raw: one segment is one message, as the slides' naive server reads it", FRAMINGS, false)

local f_tcp_stream = Field.new("tcp.stream")
local f_tcp_fin = Field.new("tcp.flags.fin")
-- UDP or TCP: one dissector serves both port tables; a UDP layer in the packet decides
local f_udp_srcport = Field.new("udp.srcport")

-- Who sent this: true the server, false the client, nil unknown.
local function from_server(pinfo)
    local src, dst = pinfo.src_port, pinfo.dst_port
    local ports = { [conv.prefs.port] = true, [conv.prefs.upper_port] = true }
    if ports[src] and not ports[dst] then return true end
    if ports[dst] and not ports[src] then return false end
    if servers[endpoint(pinfo.src, src)] then return true end
    if servers[endpoint(pinfo.dst, dst)] then return false end
    return nil
end

local function is_upper_service(pinfo)
    local port = conv.prefs.upper_port
    return port ~= 0 and (pinfo.src_port == port or pinfo.dst_port == port)
end

-- One converter message `data` (a Lua string, framing removed) whose bytes are `range`;
-- adds its items under `subtree`, returns the Info column's summary.
local function add_message(data, range, subtree, pinfo, sender_is_server)
    local command = data:sub(1, 2)
    local function text_item(from)
        if from <= #data then
            subtree:add_packet_field(cf.text, range(from - 1, #data - from + 1), ENC_UTF_8)
        end
    end
    if data == GREETING then
        subtree:add(cf.command, range, "greeting")
        text_item(1)
        if not pinfo.visited then servers[endpoint(pinfo.src, pinfo.src_port)] = true end
        return "Greeting"
    end
    if command == "E:" then
        subtree:add(cf.command, range(0, 2), "E")
        local item
        if #data > 2 then
            item = subtree:add_packet_field(cf.error, range(2, #data - 2), ENC_UTF_8)
        else
            item = subtree:add(cf.error, range(0, 2), "")
        end
        item:add_proto_expert_info(ce.error_reply)
        return "E: " .. shorten(data:sub(3))
    end
    if sender_is_server then
        subtree:add(cf.reply, range, true):set_generated()
        text_item(1)
        return "Reply: " .. shorten(data)
    end
    if command == "U:" or command == "L:" or command == "C:" then
        subtree:add(cf.command, range(0, 2), command:sub(1, 1))
        text_item(3)
        if sender_is_server == nil and not pinfo.visited then
            servers[endpoint(pinfo.dst, pinfo.dst_port)] = true
        end
        return command .. shorten(data:sub(3))
    end
    if sender_is_server == false then
        -- socklab answers E:unknown command / E:empty request (docs/PROTOCOL.md, "Errors")
        text_item(1)
        subtree:add_proto_expert_info(ce.unknown_command,
            "Request with an unknown command: the server answers E:")
        return "Unknown request: " .. shorten(data)
    end
    subtree:add(cf.reply, range, true):set_generated()
    text_item(1)
    return "Reply: " .. shorten(data)
end

local function add_info(pinfo, summaries)
    if #summaries > 0 then
        pinfo.cols.protocol:set("socklab")
        pinfo.cols.info:set(table.concat(summaries, ", "))
    end
end

local function stream_key(pinfo)
    local stream = f_tcp_stream()
    if stream == nil then return nil end
    return tostring(stream.value) .. "|" .. endpoint(pinfo.src, pinfo.src_port)
end

local function mark_broken(pinfo)
    local key = stream_key(pinfo)
    if key and not pinfo.visited and broken[key] == nil then
        broken[key] = pinfo.number
    end
end

local function after_break(pinfo, tvb, tree)
    local key = stream_key(pinfo)
    local at = key and broken[key]
    if at and pinfo.number > at then
        local subtree = tree:add(conv, tvb(), "socklab converter (not decoded)")
        subtree:add_proto_expert_info(ce.after_break,
            "Data after an over-long message or a bad length header in frame " .. at
            .. ": the message boundaries are lost, as for socklab's server (it closes)")
        add_info(pinfo, { "Data after lost message boundaries" })
        return true
    end
    return false
end

local function too_long(subtree, item, size, exact)
    local text = exact and ("Message of " .. format_count(size) .. " bytes exceeds socklab's "
        .. format_count(LIMIT) .. "-byte limit") or ("Message of over " .. format_count(LIMIT)
        .. " bytes (no end seen) exceeds socklab's limit")
    item:add_proto_expert_info(ce.too_long, text)
end

-- TCP, line or length framing, messages reassembled across segments.
local function dissect_converter_tcp(tvb, pinfo, tree)
    local length = tvb:len()
    local stream = f_tcp_stream()
    stream = stream and stream.value
    if after_break(pinfo, tvb, tree) then return length end
    local sender_is_server = from_server(pinfo)
    local bytes = tvb:raw()
    local fin = f_tcp_fin()
    local stream_ends = fin ~= nil and fin.value
    local summaries = {}
    local offset = 0
    local mode = conv.prefs.framing
    if mode == RAW then
        -- The naive framing of the slides: one segment, one message (as one recv() would see it)
        local subtree = tree:add(conv, tvb(), "socklab converter (raw)")
        subtree:add(cf.framing, "raw"):set_generated()
        table.insert(summaries, add_message(bytes, tvb(), subtree, pinfo, sender_is_server))
        add_info(pinfo, summaries)
        return length
    end
    while offset < length do
        local framing = mode
        if framing == AUTO then
            framing = stream and framing_of[stream]
                or (bytes:byte(offset + 1) == 0 and LENGTH or LINE)
            if stream and not pinfo.visited then framing_of[stream] = framing end
        end
        local remaining = length - offset
        if framing == LENGTH then
            if remaining < HEADER_BYTES then
                pinfo.desegment_offset = offset
                pinfo.desegment_len = HEADER_BYTES - remaining
                break
            end
            local announced = tvb(offset, HEADER_BYTES):uint()
            if announced > LIMIT then
                local subtree = tree:add(conv, tvb(offset), "socklab converter, bad length header")
                subtree:add(cf.framing, "length"):set_generated()
                local item = subtree:add(cf.length, tvb(offset, HEADER_BYTES))
                local header = bytes:sub(offset + 1, offset + HEADER_BYTES)
                if looks_like_text(header) then
                    item:add_proto_expert_info(ce.bad_header, "Length header \"" .. shorten(header)
                        .. "\" is text: is the peer using the line framing?")
                else
                    too_long(subtree, item, announced, true)
                end
                mark_broken(pinfo)
                table.insert(summaries, "Bad length header (" .. format_count(announced) .. " bytes)")
                break
            end
            if remaining < HEADER_BYTES + announced then
                pinfo.desegment_offset = offset
                pinfo.desegment_len = HEADER_BYTES + announced - remaining
                break
            end
            local range = tvb(offset, HEADER_BYTES + announced)
            local subtree = tree:add(conv, range, "socklab converter message")
            subtree:add(cf.framing, "length"):set_generated()
            subtree:add(cf.length, tvb(offset, HEADER_BYTES))
            local body = bytes:sub(offset + HEADER_BYTES + 1, offset + HEADER_BYTES + announced)
            if announced > 0 then
                table.insert(summaries, add_message(body, tvb(offset + HEADER_BYTES, announced),
                    subtree, pinfo, sender_is_server))
            else
                subtree:add_proto_expert_info(ce.unknown_command, "Empty message")
                table.insert(summaries, "Empty message")
            end
            offset = offset + HEADER_BYTES + announced
        else
            local newline = bytes:find("\n", offset + 1, true)
            local stop = newline -- 1-based position of "\n", or the end of an unended last line
            if newline == nil then
                if remaining > LIMIT then
                    local subtree = tree:add(conv, tvb(offset), "socklab converter, over-long line")
                    subtree:add(cf.framing, "line"):set_generated()
                    too_long(subtree, subtree, remaining, false)
                    mark_broken(pinfo)
                    table.insert(summaries, "Over-long line")
                    break
                end
                if not stream_ends then
                    pinfo.desegment_offset = offset
                    pinfo.desegment_len = DESEGMENT_ONE_MORE_SEGMENT
                    break
                end
                stop = length + 1
            end
            local body_end = stop - 1 -- 1-based position of the message's last byte
            if newline ~= nil and body_end > offset and bytes:byte(body_end) == 13 then
                body_end = body_end - 1 -- CRLF: the \r is removed (docs/PROTOCOL.md)
            end
            local body_length = body_end - offset
            local range = tvb(offset, math.min(stop, length) - offset)
            local subtree = tree:add(conv, range, "socklab converter message")
            subtree:add(cf.framing, "line"):set_generated()
            if body_length > LIMIT then
                too_long(subtree, subtree, body_length, true)
                mark_broken(pinfo)
            end
            if newline == nil then
                subtree:add_proto_expert_info(ce.no_newline,
                    "Last line without a newline before the end of the stream (socklab serves it)")
            end
            if body_length > 0 then
                table.insert(summaries, add_message(bytes:sub(offset + 1, body_end),
                    tvb(offset, body_length), subtree, pinfo, sender_is_server))
            elseif sender_is_server then
                subtree:add(cf.reply, range, true):set_generated()
                table.insert(summaries, "Reply: (empty)")
            else
                subtree:add_proto_expert_info(ce.unknown_command,
                    "Empty line: the server answers E:empty request")
                table.insert(summaries, "Empty line")
            end
            offset = math.min(stop, length)
        end
    end
    add_info(pinfo, summaries)
    return length
end

-- One sentence per segment or datagram: the lecture's uppercase service (port 12000).
local function dissect_upper(tvb, pinfo, tree)
    local subtree = tree:add(conv, tvb(), "socklab uppercase service")
    subtree:add(cf.framing, "upper"):set_generated()
    local sender_is_server = from_server(pinfo)
    if sender_is_server then subtree:add(cf.reply, tvb(), true):set_generated() end
    subtree:add_packet_field(cf.text, tvb(), ENC_UTF_8)
    add_info(pinfo, { (sender_is_server and "Reply: " or "Sentence: ") .. shorten(tvb:raw()) })
    return tvb:len()
end

local function split_request_id(data)
    -- "#<1-20 digits> " prefix (docs/PROTOCOL.md, "Request ids"), else nil
    local digits = data:match("^#(%d+) ")
    if digits == nil or #digits > MAX_ID_DIGITS then return nil end
    return digits
end

local function dissect_converter_udp(tvb, pinfo, tree)
    local data = tvb:raw()
    local subtree = tree:add(conv, tvb(), "socklab converter datagram")
    subtree:add(cf.framing, "datagram"):set_generated()
    local start = 0
    local digits = split_request_id(data)
    local prefix = ""
    if digits then
        local value = digits_to_uint64(digits)
        local id_range = tvb(1, #digits)
        if value then
            subtree:add(cf.request_id, id_range, value)
        else
            subtree:add_proto_expert_info(ce.bad_id)
        end
        start = #digits + 2
        prefix = "#" .. digits .. " "
    end
    if start >= #data then
        add_info(pinfo, { prefix .. "(empty)" })
        return tvb:len()
    end
    local summary = add_message(data:sub(start + 1), tvb(start), subtree, pinfo, from_server(pinfo))
    add_info(pinfo, { prefix .. summary })
    return tvb:len()
end

function conv.init()
    broken, servers, framing_of = {}, {}, {}
end

function conv.dissector(tvb, pinfo, tree)
    if tvb:len() == 0 then return 0 end
    if is_upper_service(pinfo) then
        return dissect_upper(tvb, pinfo, tree)
    end
    if f_udp_srcport() ~= nil then
        return dissect_converter_udp(tvb, pinfo, tree)
    end
    return dissect_converter_tcp(tvb, pinfo, tree)
end

------------------------------------------------------------------------------------------------
-- socklab_chat

local chat = Proto("socklab_chat", "socklab chat")

local hf = {
    length = ProtoField.uint32("socklab_chat.length", "Length", base.DEC),
    header = ProtoField.string("socklab_chat.header", "Header (JSON)"),
    type = ProtoField.string("socklab_chat.type", "Type",
        "hello, peers, msg, ack, ping, pong, nick or bye"),
    from = ProtoField.string("socklab_chat.from", "From", "the sender's name"),
    id = ProtoField.uint64("socklab_chat.id", "Id", base.DEC),
    time = ProtoField.double("socklab_chat.time", "Time", "the sender's clock, seconds since 1970"),
    to = ProtoField.string("socklab_chat.to", "To", "msg: the one recipient"),
    node = ProtoField.string("socklab_chat.node", "Node"),
    listen = ProtoField.string("socklab_chat.listen", "Listen"),
    reason = ProtoField.string("socklab_chat.reason", "Reason", "bye: why"),
    text = ProtoField.string("socklab_chat.text", "Text", "msg: the typed line"),
    body = ProtoField.string("socklab_chat.body", "Body"),
}
chat.fields = {
    hf.length, hf.header, hf.type, hf.from, hf.id, hf.time, hf.to, hf.node, hf.listen,
    hf.reason, hf.text, hf.body,
}

local he = {
    too_long = ProtoExpert.new("socklab_chat.too_long",
        "Frame over the chat's 65,536-byte limit", expert.group.MALFORMED, expert.severity.ERROR),
    bad_header = ProtoExpert.new("socklab_chat.bad_header",
        "Frame header that breaks the chat protocol", expert.group.MALFORMED,
        expert.severity.ERROR),
}
chat.experts = { he.too_long, he.bad_header }

chat.prefs.port = Pref.uint("Chat port", 0,
    "a port to decode as the chat (0: none; the chat listens on a port the OS picks, "
    .. "found by the heuristic)")

local FRAME_TYPES = {
    hello = true, peers = true, msg = true, ack = true, ping = true, pong = true, nick = true,
    bye = true,
}

-- A JSON object's top-level scalar members: key -> { kind, value, first, last } (1-based byte
-- positions of the value in `s`), or nil, reason. Nested values are skipped, bounded by `s`.
local function utf8_char(code)
    if code < 0x80 then return string.char(code) end
    if code < 0x800 then
        return string.char(0xC0 + math.floor(code / 0x40), 0x80 + code % 0x40)
    end
    if code < 0x10000 then
        return string.char(0xE0 + math.floor(code / 0x1000), 0x80 + math.floor(code / 0x40) % 0x40,
            0x80 + code % 0x40)
    end
    return string.char(0xF0 + math.floor(code / 0x40000), 0x80 + math.floor(code / 0x1000) % 0x40,
        0x80 + math.floor(code / 0x40) % 0x40, 0x80 + code % 0x40)
end

local ESCAPES = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n",
    r = "\r", t = "\t" }

local function json_string(s, i)
    -- s:sub(i, i) == '"'; returns decoded string, position after the closing quote
    local parts = {}
    local j = i + 1
    while true do
        local k = s:find('["\\]', j)
        if k == nil then return nil end
        parts[#parts + 1] = s:sub(j, k - 1)
        if s:sub(k, k) == '"' then return table.concat(parts), k + 1 end
        local e = s:sub(k + 1, k + 1)
        if e == "u" then
            local hex = s:sub(k + 2, k + 5)
            if not hex:find("^%x%x%x%x$") then return nil end
            local code = tonumber(hex, 16)
            local after = k + 6
            if code >= 0xD800 and code < 0xDC00 and s:sub(after, after + 1) == "\\u" then
                local low = tonumber(s:sub(after + 2, after + 5), 16)
                if low and low >= 0xDC00 and low < 0xE000 then
                    code = 0x10000 + (code - 0xD800) * 0x400 + (low - 0xDC00)
                    after = after + 6
                end
            end
            parts[#parts + 1] = utf8_char(code)
            j = after
        elseif ESCAPES[e] then
            parts[#parts + 1] = ESCAPES[e]
            j = k + 2
        else
            return nil
        end
    end
end

local function skip_space(s, i)
    return (s:find("[^ \t\r\n]", i)) or (#s + 1)
end

local function skip_value(s, i)
    -- position after the JSON value starting at i, or nil
    local c = s:sub(i, i)
    if c == '"' then
        local _, after = json_string(s, i)
        return after
    end
    if c == "{" or c == "[" then
        local depth, j = 0, i
        while j <= #s do
            local k = s:find('[%[%]{}"]', j)
            if k == nil then return nil end
            local d = s:sub(k, k)
            if d == '"' then
                local _, after = json_string(s, k)
                if after == nil then return nil end
                j = after
            else
                depth = depth + ((d == "{" or d == "[") and 1 or -1)
                j = k + 1
                if depth == 0 then return j end
            end
        end
        return nil
    end
    local _, last = s:find("^[%w%.%+%-]+", i)
    return last and last + 1
end

local function json_members(s)
    local members = {}
    local i = skip_space(s, 1)
    if s:sub(i, i) ~= "{" then return nil, "not a JSON object" end
    i = skip_space(s, i + 1)
    if s:sub(i, i) == "}" then return members end
    while true do
        if s:sub(i, i) ~= '"' then return nil, "not JSON" end
        local key, after = json_string(s, i)
        if key == nil then return nil, "not JSON" end
        i = skip_space(s, after)
        if s:sub(i, i) ~= ":" then return nil, "not JSON" end
        i = skip_space(s, i + 1)
        local first = i
        local c = s:sub(i, i)
        local stop = skip_value(s, i)
        if stop == nil then return nil, "not JSON" end
        if c == '"' then
            members[key] = { "string", (json_string(s, i)), first, stop - 1 }
        elseif c:find("[%d%-]") then
            members[key] = { "number", s:sub(first, stop - 1), first, stop - 1 }
        else
            members[key] = { "other", s:sub(first, stop - 1), first, stop - 1 }
        end
        i = skip_space(s, stop)
        c = s:sub(i, i)
        if c == "}" then return members end
        if c ~= "," then return nil, "not JSON" end
        i = skip_space(s, i + 1)
    end
end

local function add_chat_frame(tvb, offset, announced, pinfo, tree)
    local range = tvb(offset, HEADER_BYTES + announced)
    local subtree = tree:add(chat, range, "socklab chat frame")
    subtree:add(hf.length, tvb(offset, HEADER_BYTES))
    local start = offset + HEADER_BYTES
    local payload = tvb:raw(start, announced)
    local newline = payload:find("\n", 1, true)
    if newline == nil or newline > CHAT_HEADER_LIMIT + 1 then
        local why = newline == nil and #payload <= CHAT_HEADER_LIMIT
            and "Frame without the newline after its JSON header"
            or "Frame header longer than 4,096 bytes"
        subtree:add_proto_expert_info(he.bad_header, why)
        return "Bad frame"
    end
    local header = payload:sub(1, newline - 1)
    subtree:add_packet_field(hf.header, tvb(start, newline - 1), ENC_UTF_8)
    local members, problem = json_members(header)
    if members == nil then
        subtree:add_proto_expert_info(he.bad_header, "Frame header is " .. problem)
        return "Bad frame"
    end
    local function member_range(m)
        return tvb(start + m[3] - 1, m[4] - m[3] + 1)
    end
    local function add_string(field, key)
        local m = members[key]
        if m and m[1] == "string" then
            subtree:add(field, member_range(m), m[2])
            return m[2]
        end
        return nil
    end
    local kind = add_string(hf.type, "type")
    local sender = add_string(hf.from, "from")
    local id = members.id
    if id and id[1] == "number" and id[2]:find("^%d+$") then
        local value = digits_to_uint64(id[2])
        if value then subtree:add(hf.id, member_range(id), value) end
    end
    local sent = members.time
    if sent and sent[1] == "number" and tonumber(sent[2]) then
        subtree:add(hf.time, member_range(sent), tonumber(sent[2]))
    end
    local recipient = add_string(hf.to, "to")
    add_string(hf.node, "node")
    add_string(hf.listen, "listen")
    local reason = add_string(hf.reason, "reason")
    if kind == nil or not FRAME_TYPES[kind] or sender == nil then
        subtree:add_proto_expert_info(he.bad_header,
            "Frame header without a known 'type' or without 'from'")
    end
    local body_length = announced - newline
    local body_range = body_length > 0 and tvb(start + newline, body_length) or nil
    if kind == "msg" and body_range then
        subtree:add_packet_field(hf.text, body_range, ENC_UTF_8)
    elseif body_range then
        subtree:add_packet_field(hf.body, body_range, ENC_UTF_8)
    end
    local summary = (kind and shorten(kind) or "?") .. " from " .. (sender and shorten(sender) or "?")
    if recipient then summary = summary .. " to " .. shorten(recipient) end
    if kind == "msg" and body_range then
        summary = summary .. ": " .. shorten(payload:sub(newline + 1))
    elseif reason then
        summary = summary .. " (" .. shorten(reason) .. ")"
    end
    return summary
end

function chat.dissector(tvb, pinfo, tree)
    local length = tvb:len()
    if length == 0 then return 0 end
    local summaries = {}
    local offset = 0
    while offset < length do
        local remaining = length - offset
        if remaining < HEADER_BYTES then
            pinfo.desegment_offset = offset
            pinfo.desegment_len = HEADER_BYTES - remaining
            break
        end
        local announced = tvb(offset, HEADER_BYTES):uint()
        if announced > LIMIT then
            local subtree = tree:add(chat, tvb(offset), "socklab chat, frame over the limit")
            subtree:add(hf.length, tvb(offset, HEADER_BYTES)):add_proto_expert_info(he.too_long,
                "Frame of " .. format_count(announced) .. " bytes exceeds the "
                .. format_count(LIMIT) .. "-byte limit")
            table.insert(summaries, "Frame over the limit")
            break
        end
        if remaining < HEADER_BYTES + announced then
            pinfo.desegment_offset = offset
            pinfo.desegment_len = HEADER_BYTES + announced - remaining
            break
        end
        table.insert(summaries, add_chat_frame(tvb, offset, announced, pinfo, tree))
        offset = offset + HEADER_BYTES + announced
    end
    if #summaries > 0 then
        pinfo.cols.protocol:set("socklab chat")
        pinfo.cols.info:set(table.concat(summaries, ", "))
    end
    return length
end

------------------------------------------------------------------------------------------------
-- Registration: the course's ports, then heuristics for any other port

local registered = { conv = {}, chat = {} }

local function register(which, proto, ports)
    for _, table_name in ipairs({ "tcp.port", "udp.port" }) do
        local dissectors = DissectorTable.get(table_name)
        for _, port in ipairs(registered[which]) do
            dissectors:remove(port, proto)
        end
    end
    registered[which] = {}
    for _, port in ipairs(ports) do
        if port ~= 0 then
            DissectorTable.get("tcp.port"):add(port, proto)
            if proto == conv then DissectorTable.get("udp.port"):add(port, proto) end
            table.insert(registered[which], port)
        end
    end
end

function conv.prefs_changed()
    register("conv", conv, { conv.prefs.port, conv.prefs.upper_port })
end

function chat.prefs_changed()
    register("chat", chat, { chat.prefs.port })
end

register("conv", conv, { 50000, 12000 })

local function starts_like_request(s)
    local command = s:sub(1, 2)
    return command == "U:" or command == "L:" or command == "C:"
end

-- TCP: a greeting, or a request line, framed by lines or lengths.
local function heuristic_converter_tcp(tvb, pinfo, tree)
    local length = tvb:len()
    if length < 3 then return false end
    local head = tvb:raw(0, math.min(length, 80))
    local message = head
    if head:byte(1) == 0 and length >= HEADER_BYTES + 2 then
        if tvb(0, HEADER_BYTES):uint() > LIMIT then return false end
        message = head:sub(HEADER_BYTES + 1)
    elseif not head:find("\n", 1, true) then
        return false
    end
    local greeting = message:sub(1, 20) == GREETING:sub(1, 20)
    if not greeting and not starts_like_request(message) then return false end
    pinfo.conversation = conv
    conv.dissector(tvb, pinfo, tree)
    return true
end

-- UDP: a request, with or without a request id, or an error reply.
local function heuristic_converter_udp(tvb, pinfo, tree)
    local length = tvb:len()
    if length < 2 then return false end
    local head = tvb:raw(0, math.min(length, 32))
    local digits = split_request_id(head)
    local message = digits and head:sub(#digits + 3) or head
    if not starts_like_request(message) and message:sub(1, 2) ~= "E:" then return false end
    pinfo.conversation = conv
    conv.dissector(tvb, pinfo, tree)
    return true
end

-- Chat: a length under the limit, then a JSON header with "type" and "from".
local function heuristic_chat(tvb, pinfo, tree)
    local length = tvb:len()
    if length < HEADER_BYTES + 2 or tvb(0, HEADER_BYTES):uint() > LIMIT then return false end
    local head = tvb:raw(HEADER_BYTES, math.min(length - HEADER_BYTES, CHAT_HEADER_LIMIT))
    if head:sub(1, 2) ~= '{"' or not head:find('"type":"', 1, true)
        or not head:find('"from":"', 1, true) then
        return false
    end
    pinfo.conversation = chat
    chat.dissector(tvb, pinfo, tree)
    return true
end

conv:register_heuristic("tcp", heuristic_converter_tcp)
conv:register_heuristic("udp", heuristic_converter_udp)
chat:register_heuristic("tcp", heuristic_chat)
