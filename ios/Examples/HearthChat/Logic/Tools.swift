import Foundation
import Hearth

// Mirrors android/app/src/main/kotlin/dev/hearth/chat/logic/Tools.kt.

/// The two demo tools the app offers the model, executed locally (no network): the current date
/// and time, and a calculator. Results are JSON objects, fed back with `Message.toolResult`.
struct DemoTools: Sendable {
    static let time = "get_current_time"
    static let calculator = "calculate"
    let now: @Sendable () -> Date

    init(now: @escaping @Sendable () -> Date = { Date() }) { self.now = now }

    var specs: [ToolSpec] {
        [
            ToolSpec(
                name: DemoTools.time,
                description: "The current date and time on this device, optionally in another time zone.",
                parametersJson: #"{"type":"object","properties":{"timezone":{"type":"string","description":"IANA zone, e.g. Europe/Paris"}}}"#
            ),
            ToolSpec(
                name: DemoTools.calculator,
                description: "Evaluates an arithmetic expression with + - * / % ^ and parentheses.",
                parametersJson: #"{"type":"object","properties":{"expression":{"type":"string"}},"required":["expression"]}"#
            ),
        ]
    }

    /// Runs `call`; failures are results too (`{"error": …}`), so the model can say so.
    func execute(_ call: ToolCall) -> ToolOutcome {
        let text = call.argumentsJson.isEmpty ? "{}" : call.argumentsJson
        guard let data = text.data(using: .utf8),
              let args = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        else { return .failure("the arguments are not a JSON object") }
        switch call.name {
        case DemoTools.time:
            return currentTime(zone: args["timezone"] as? String)
        case DemoTools.calculator:
            guard let expr = args["expression"] as? String else { return .failure("missing \"expression\"") }
            do {
                let v = try Calculator.evaluate(expr)
                return ToolOutcome(resultJson: json(["expression": expr, "result": v]), error: nil)
            } catch let e as Calculator.CalcError {
                return .failure(e.reason)
            } catch {
                return .failure("cannot evaluate")
            }
        default:
            return .failure("unknown tool \(call.name)")
        }
    }

    private func currentTime(zone: String?) -> ToolOutcome {
        var tz = TimeZone.current
        if let zone, !zone.isEmpty {
            guard let z = TimeZone(identifier: zone) else { return .failure("unknown time zone \(zone)") }
            tz = z
        }
        let iso = ISO8601DateFormatter()
        iso.timeZone = tz
        let weekday = DateFormatter()
        weekday.locale = Locale(identifier: "en_US_POSIX")
        weekday.timeZone = tz
        weekday.dateFormat = "EEEE"
        let t = now()
        return ToolOutcome(resultJson: json(["iso8601": iso.string(from: t), "weekday": weekday.string(from: t), "timezone": tz.identifier]), error: nil)
    }
}

/// A tool's JSON result; `error` is set (and also inside `resultJson`) when it failed.
struct ToolOutcome: Equatable, Sendable {
    let resultJson: String
    let error: String?

    static func failure(_ reason: String) -> ToolOutcome {
        ToolOutcome(resultJson: json(["error": reason]), error: reason)
    }
}

func json(_ object: [String: Any]) -> String {
    guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return "{}" }
    return String(decoding: data, as: UTF8.self)
}

/// A safe arithmetic evaluator (recursive descent, no NSExpression): numbers, `+ - * / %`,
/// `^` (right-associative, binding tighter than unary minus), unary minus, parentheses.
enum Calculator {
    struct CalcError: Error { let reason: String }

    static let maxLength = 500
    static let maxDepth = 64

    static func evaluate(_ expression: String) throws -> Double {
        if expression.count > maxLength { throw CalcError(reason: "expression too long") }
        var p = Parser(chars: Array(expression))
        let v = try p.sum()
        p.space()
        if p.i < p.chars.count { throw CalcError(reason: "unexpected '\(p.chars[p.i])' at \(p.i + 1)") }
        if !v.isFinite { throw CalcError(reason: "the result is not a finite number") }
        return v
    }

    private struct Parser {
        let chars: [Character]
        var i = 0
        var depth = 0

        mutating func space() {
            while i < chars.count, chars[i].isWhitespace { i += 1 }
        }

        mutating func eat(_ c: Character) -> Bool {
            space()
            if i < chars.count, chars[i] == c {
                i += 1
                return true
            }
            return false
        }

        mutating func sum() throws -> Double {
            var v = try product()
            while true {
                if eat("+") { v += try product() } else if eat("-") { v -= try product() } else { return v }
            }
        }

        mutating func product() throws -> Double {
            var v = try unary()
            while true {
                if eat("*") || eat("×") {
                    v *= try unary()
                } else if eat("/") || eat("÷") {
                    let d = try unary()
                    if d == 0 { throw CalcError(reason: "division by zero") }
                    v /= d
                } else if eat("%") {
                    let d = try unary()
                    if d == 0 { throw CalcError(reason: "division by zero") }
                    v = v.truncatingRemainder(dividingBy: d)
                } else {
                    return v
                }
            }
        }

        // As in mathematics: -2^2 = -(2^2), 2^-1 = 0.5, 2^3^2 = 2^(3^2).
        mutating func unary() throws -> Double {
            if eat("-") { return -(try unary()) }
            if eat("+") { return try unary() }
            return try power()
        }

        mutating func power() throws -> Double {
            let base = try atom()
            return eat("^") ? pow(base, try unary()) : base
        }

        mutating func atom() throws -> Double {
            if eat("(") {
                depth += 1
                if depth > Calculator.maxDepth { throw CalcError(reason: "too deeply nested") }
                let v = try sum()
                if !eat(")") { throw CalcError(reason: "missing )") }
                depth -= 1
                return v
            }
            space()
            let start = i
            while i < chars.count, chars[i].isNumber || chars[i] == "." { i += 1 }
            if i < chars.count, i > start, chars[i] == "e" || chars[i] == "E" {
                var j = i + 1
                if j < chars.count, chars[j] == "+" || chars[j] == "-" { j += 1 }
                if j < chars.count, chars[j].isNumber {
                    i = j
                    while i < chars.count, chars[i].isNumber { i += 1 }
                }
            }
            if start == i {
                throw CalcError(reason: i < chars.count ? "unexpected '\(chars[i])' at \(i + 1)" : "the expression ends too early")
            }
            guard let v = Double(String(chars[start..<i])) else {
                throw CalcError(reason: "bad number \(String(chars[start..<i]))")
            }
            return v
        }
    }
}
