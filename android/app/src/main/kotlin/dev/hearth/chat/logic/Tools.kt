package dev.hearth.chat.logic

import dev.hearth.ToolCall
import dev.hearth.ToolSpec
import java.time.ZoneId
import java.time.ZonedDateTime
import java.time.format.DateTimeFormatter

/**
 * The two demo tools the app offers the model, executed locally (no network): the current date
 * and time, and a calculator. Results are JSON objects, fed back with `Message.toolResult`.
 */
class DemoTools(private val now: () -> ZonedDateTime = { ZonedDateTime.now() }) {
    val specs: List<ToolSpec> = listOf(
        ToolSpec(
            TIME,
            "The current date and time on this device, optionally in another time zone.",
            """{"type":"object","properties":{"timezone":{"type":"string","description":"IANA zone, e.g. Europe/Paris"}}}""",
        ),
        ToolSpec(
            CALCULATOR,
            "Evaluates an arithmetic expression with + - * / % ^ and parentheses.",
            """{"type":"object","properties":{"expression":{"type":"string"}},"required":["expression"]}""",
        ),
    )

    /** Runs [call]; failures are results too (`{"error": …}`), so the model can say so. */
    fun execute(call: ToolCall): ToolOutcome {
        val args = try {
            Json.parseObject(call.argumentsJson.ifBlank { "{}" })
        } catch (e: Json.ParseException) {
            return ToolOutcome.failure("the arguments are not a JSON object: ${e.message}")
        }
        return when (call.name) {
            TIME -> currentTime(args.str("timezone"))
            CALCULATOR -> {
                val expr = args.str("expression") ?: return ToolOutcome.failure("missing \"expression\"")
                try {
                    val v = Calculator.evaluate(expr)
                    ToolOutcome(Json.write(mapOf("expression" to expr, "result" to v)), null)
                } catch (e: Calculator.CalcException) {
                    ToolOutcome.failure(e.message ?: "cannot evaluate")
                }
            }
            else -> ToolOutcome.failure("unknown tool ${call.name}")
        }
    }

    private fun currentTime(zone: String?): ToolOutcome {
        val t = try {
            if (zone.isNullOrBlank()) now() else now().withZoneSameInstant(ZoneId.of(zone))
        } catch (_: java.time.DateTimeException) {
            return ToolOutcome.failure("unknown time zone $zone")
        }
        val fields = mapOf(
            "iso8601" to t.format(DateTimeFormatter.ISO_OFFSET_DATE_TIME),
            "weekday" to t.dayOfWeek.toString().lowercase().replaceFirstChar { it.uppercase() },
            "timezone" to t.zone.id,
        )
        return ToolOutcome(Json.write(fields), null)
    }

    companion object {
        const val TIME = "get_current_time"
        const val CALCULATOR = "calculate"
    }
}

/** A tool's JSON result; [error] is set (and also inside [resultJson]) when it failed. */
data class ToolOutcome(val resultJson: String, val error: String?) {
    companion object {
        fun failure(reason: String) = ToolOutcome(Json.write(mapOf("error" to reason)), reason)
    }
}

/**
 * A safe arithmetic evaluator (recursive descent, no reflection or scripting engine): numbers,
 * `+ - * / %`, `^` (right-associative power, binding tighter than unary minus), parentheses. Division by zero and
 * results that are not finite are errors.
 */
object Calculator {
    class CalcException(message: String) : Exception(message)

    private const val MAX_LENGTH = 500
    private const val MAX_DEPTH = 64

    fun evaluate(expression: String): Double {
        if (expression.length > MAX_LENGTH) throw CalcException("expression too long")
        val p = Parser(expression)
        val v = p.sum()
        p.space()
        if (p.i < expression.length) throw CalcException("unexpected '${expression[p.i]}' at ${p.i + 1}")
        if (!v.isFinite()) throw CalcException("the result is not a finite number")
        return v
    }

    private class Parser(val s: String) {
        var i = 0
        private var depth = 0

        fun space() {
            while (i < s.length && s[i].isWhitespace()) i++
        }

        private fun eat(c: Char): Boolean {
            space()
            if (i < s.length && s[i] == c) {
                i++
                return true
            }
            return false
        }

        fun sum(): Double {
            var v = product()
            while (true) {
                v = when {
                    eat('+') -> v + product()
                    eat('-') -> v - product()
                    else -> return v
                }
            }
        }

        private fun product(): Double {
            var v = unary()
            while (true) {
                v = when {
                    eat('*') || eat('×') -> v * unary()
                    eat('/') || eat('÷') -> unary().let { d -> if (d == 0.0) throw CalcException("division by zero") else v / d }
                    eat('%') -> unary().let { d -> if (d == 0.0) throw CalcException("division by zero") else v % d }
                    else -> return v
                }
            }
        }

        // As in mathematics: -2^2 = -(2^2), 2^-1 = 0.5, 2^3^2 = 2^(3^2).
        private fun unary(): Double {
            if (eat('-')) return -unary()
            if (eat('+')) return unary()
            return power()
        }

        private fun power(): Double {
            val base = atom()
            return if (eat('^')) Math.pow(base, unary()) else base
        }

        private fun atom(): Double {
            if (eat('(')) {
                if (++depth > MAX_DEPTH) throw CalcException("too deeply nested")
                val v = sum()
                if (!eat(')')) throw CalcException("missing )")
                depth--
                return v
            }
            space()
            val start = i
            while (i < s.length && (s[i].isDigit() || s[i] == '.')) i++
            // An exponent: 1e3, 2.5E-4.
            if (i < s.length && i > start && (s[i] == 'e' || s[i] == 'E')) {
                var j = i + 1
                if (j < s.length && (s[j] == '+' || s[j] == '-')) j++
                if (j < s.length && s[j].isDigit()) {
                    i = j
                    while (i < s.length && s[i].isDigit()) i++
                }
            }
            if (start == i) {
                throw CalcException(if (i < s.length) "unexpected '${s[i]}' at ${i + 1}" else "the expression ends too early")
            }
            return s.substring(start, i).replace(",", "").toDoubleOrNull()
                ?: throw CalcException("bad number ${s.substring(start, i)}")
        }
    }
}
