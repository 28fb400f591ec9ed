/// A JSON value as the safetensors header uses them: objects keep their key order, numbers
/// must be integers.
enum JSONValue {
    case object([(String, JSONValue)])
    case array([JSONValue])
    case string(String)
    case integer(Int)
    case boolean(Bool)
    case null
}

/// Parses the JSON of a safetensors header: strict, nesting at most 64 deep, every failure an
/// error that says where.
struct JSONParser {
    private let bytes: ArraySlice<UInt8>
    private var position: Int
    private var depth = 0

    init(bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        position = bytes.startIndex
    }

    /// The one value of the text, trailing white space allowed.
    mutating func parseDocument() throws -> JSONValue {
        let value = try parseValue()
        skipSpace()
        guard position == bytes.endIndex else { throw failure("text after the JSON value") }
        return value
    }

    private func failure(_ what: String) -> TrainingError {
        .checkpointCorrupt(path: "(header)", reason: "\(what) at byte \(position - bytes.startIndex) of the JSON header")
    }

    private mutating func skipSpace() {
        while position < bytes.endIndex, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
    }

    private mutating func expect(_ byte: UInt8) throws {
        skipSpace()
        guard position < bytes.endIndex, bytes[position] == byte else { throw failure("expected '\(Character(Unicode.Scalar(byte)))'") }
        position += 1
    }

    private mutating func parseValue() throws -> JSONValue {
        skipSpace()
        guard position < bytes.endIndex else { throw failure("unexpected end") }
        switch bytes[position] {
        case UInt8(ascii: "{"):
            return try nested { parser in
                parser.position += 1
                var pairs: [(String, JSONValue)] = []
                parser.skipSpace()
                if parser.position < parser.bytes.endIndex, parser.bytes[parser.position] == UInt8(ascii: "}") { parser.position += 1; return .object(pairs) }
                repeat {
                    parser.skipSpace()
                    guard case .string(let key) = try parser.parseString() else { throw parser.failure("expected a key") }
                    try parser.expect(UInt8(ascii: ":"))
                    pairs.append((key, try parser.parseValue()))
                } while try parser.another(closing: UInt8(ascii: "}"))
                return .object(pairs)
            }
        case UInt8(ascii: "["):
            return try nested { parser in
                parser.position += 1
                var items: [JSONValue] = []
                parser.skipSpace()
                if parser.position < parser.bytes.endIndex, parser.bytes[parser.position] == UInt8(ascii: "]") { parser.position += 1; return .array(items) }
                repeat { items.append(try parser.parseValue()) } while try parser.another(closing: UInt8(ascii: "]"))
                return .array(items)
            }
        case UInt8(ascii: "\""): return try parseString()
        case UInt8(ascii: "t"): return try literal("true", .boolean(true))
        case UInt8(ascii: "f"): return try literal("false", .boolean(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        default: return try parseInteger()
        }
    }

    private mutating func nested(_ body: (inout JSONParser) throws -> JSONValue) throws -> JSONValue {
        depth += 1
        defer { depth -= 1 }
        guard depth <= 64 else { throw failure("nesting deeper than 64") }
        return try body(&self)
    }

    /// After an item: true on a comma, false on `closing`.
    private mutating func another(closing: UInt8) throws -> Bool {
        skipSpace()
        guard position < bytes.endIndex else { throw failure("unexpected end") }
        let byte = bytes[position]
        position += 1
        if byte == UInt8(ascii: ",") { return true }
        if byte == closing { return false }
        throw failure("expected ',' or '\(Character(Unicode.Scalar(closing)))'")
    }

    private mutating func literal(_ word: String, _ value: JSONValue) throws -> JSONValue {
        let text = Array(word.utf8)
        guard bytes.endIndex - position >= text.count, Array(bytes[position ..< position + text.count]) == text else {
            throw failure("unknown literal")
        }
        position += text.count
        return value
    }

    private mutating func parseInteger() throws -> JSONValue {
        let start = position
        if position < bytes.endIndex, bytes[position] == UInt8(ascii: "-") { position += 1 }
        while position < bytes.endIndex, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) { position += 1 }
        guard let value = Int(String(decoding: bytes[start..<position], as: UTF8.self)) else {
            throw failure("expected an integer")
        }
        return .integer(value)
    }

    private mutating func parseString() throws -> JSONValue {
        guard position < bytes.endIndex, bytes[position] == UInt8(ascii: "\"") else { throw failure("expected a string") }
        position += 1
        var utf8: [UInt8] = []
        while true {
            guard position < bytes.endIndex else { throw failure("unterminated string") }
            let byte = bytes[position]
            position += 1
            if byte == UInt8(ascii: "\"") { break }
            guard byte == UInt8(ascii: "\\") else { utf8.append(byte); continue }
            guard position < bytes.endIndex else { throw failure("unterminated escape") }
            let escape = bytes[position]
            position += 1
            switch escape {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(escape)
            case UInt8(ascii: "n"): utf8.append(0x0A)
            case UInt8(ascii: "t"): utf8.append(0x09)
            case UInt8(ascii: "r"): utf8.append(0x0D)
            case UInt8(ascii: "b"): utf8.append(0x08)
            case UInt8(ascii: "f"): utf8.append(0x0C)
            case UInt8(ascii: "u"):
                guard bytes.endIndex - position >= 4, let code = UInt32(String(decoding: bytes[position ..< position + 4], as: UTF8.self), radix: 16),
                      let scalar = Unicode.Scalar(code) else { throw failure("bad \\u escape") }
                position += 4
                utf8.append(contentsOf: Array(String(Character(scalar)).utf8))
            default: throw failure("unknown escape")
            }
        }
        guard let text = String(validating: utf8, as: UTF8.self) else { throw failure("a string that is not UTF-8") }
        return .string(text)
    }
}
