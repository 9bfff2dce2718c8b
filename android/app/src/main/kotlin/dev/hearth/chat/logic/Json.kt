package dev.hearth.chat.logic

/**
 * A small JSON reader and writer for the app's own files (conversations, settings) and the demo
 * tools' arguments and results. Values are `null`, `Boolean`, `Double`, `String`, `List<Any?>`
 * and `Map<String, Any?>` (insertion-ordered). No dependency, so the logic compiles on a plain
 * JVM, on Android and mirrors the Swift side's `JSONSerialization` use.
 */
object Json {
    class ParseException(message: String) : IllegalArgumentException(message)

    fun parse(text: String): Any? {
        val p = Reader(text)
        val v = p.value()
        p.skipSpace()
        if (p.i != text.length) throw ParseException("unexpected '${text[p.i]}' at ${p.i}")
        return v
    }

    /** Parses [text] as an object; anything else is a [ParseException]. */
    @Suppress("UNCHECKED_CAST")
    fun parseObject(text: String): Map<String, Any?> =
        parse(text) as? Map<String, Any?> ?: throw ParseException("not a JSON object")

    fun write(value: Any?): String = StringBuilder().also { write(value, it) }.toString()

    private fun write(v: Any?, out: StringBuilder) {
        when (v) {
            null -> out.append("null")
            is Boolean -> out.append(v)
            is Int, is Long, is UInt, is ULong -> out.append(v.toString())
            is Float -> writeNumber(v.toDouble(), out)
            is Double -> writeNumber(v, out)
            is String -> writeString(v, out)
            is Map<*, *> -> {
                out.append('{')
                v.entries.forEachIndexed { i, (k, x) ->
                    if (i > 0) out.append(',')
                    writeString(k.toString(), out)
                    out.append(':')
                    write(x, out)
                }
                out.append('}')
            }
            is Iterable<*> -> {
                out.append('[')
                v.forEachIndexed { i, x ->
                    if (i > 0) out.append(',')
                    write(x, out)
                }
                out.append(']')
            }
            else -> throw IllegalArgumentException("cannot write ${v::class.simpleName} as JSON")
        }
    }

    private fun writeNumber(d: Double, out: StringBuilder) {
        require(d.isFinite()) { "JSON has no $d" }
        if (d == Math.rint(d) && kotlin.math.abs(d) < 1e15) out.append(d.toLong()) else out.append(d)
    }

    private fun writeString(s: String, out: StringBuilder) {
        out.append('"')
        for (c in s) {
            when (c) {
                '"' -> out.append("\\\"")
                '\\' -> out.append("\\\\")
                '\n' -> out.append("\\n")
                '\r' -> out.append("\\r")
                '\t' -> out.append("\\t")
                else -> if (c < ' ') out.append("\\u%04x".format(c.code)) else out.append(c)
            }
        }
        out.append('"')
    }

    private class Reader(val s: String) {
        var i = 0

        fun skipSpace() {
            while (i < s.length && s[i].isWhitespace()) i++
        }

        fun value(): Any? {
            skipSpace()
            if (i >= s.length) throw ParseException("unexpected end")
            return when (val c = s[i]) {
                '{' -> obj()
                '[' -> arr()
                '"' -> str()
                't' -> literal("true", true)
                'f' -> literal("false", false)
                'n' -> literal("null", null)
                else -> if (c == '-' || c.isDigit()) num() else throw ParseException("unexpected '$c' at $i")
            }
        }

        private fun literal(word: String, v: Any?): Any? {
            if (!s.startsWith(word, i)) throw ParseException("bad literal at $i")
            i += word.length
            return v
        }

        private fun num(): Double {
            val start = i
            if (s[i] == '-') i++
            while (i < s.length && (s[i].isDigit() || s[i] in ".eE+-")) i++
            return s.substring(start, i).toDoubleOrNull() ?: throw ParseException("bad number at $start")
        }

        private fun str(): String {
            val out = StringBuilder()
            i++
            while (true) {
                if (i >= s.length) throw ParseException("unterminated string")
                val c = s[i++]
                when (c) {
                    '"' -> return out.toString()
                    '\\' -> {
                        if (i >= s.length) throw ParseException("unterminated escape")
                        when (val e = s[i++]) {
                            'n' -> out.append('\n')
                            'r' -> out.append('\r')
                            't' -> out.append('\t')
                            'b' -> out.append('\b')
                            'f' -> out.append('\u000c')
                            'u' -> {
                                if (i + 4 > s.length) throw ParseException("bad \\u escape")
                                out.append(s.substring(i, i + 4).toInt(16).toChar())
                                i += 4
                            }
                            else -> out.append(e)
                        }
                    }
                    else -> out.append(c)
                }
            }
        }

        private fun arr(): List<Any?> {
            val out = mutableListOf<Any?>()
            i++
            skipSpace()
            if (i < s.length && s[i] == ']') return out.also { i++ }
            while (true) {
                out.add(value())
                skipSpace()
                when (s.getOrNull(i++)) {
                    ',' -> continue
                    ']' -> return out
                    else -> throw ParseException("expected , or ] at ${i - 1}")
                }
            }
        }

        private fun obj(): Map<String, Any?> {
            val out = LinkedHashMap<String, Any?>()
            i++
            skipSpace()
            if (i < s.length && s[i] == '}') return out.also { i++ }
            while (true) {
                skipSpace()
                if (s.getOrNull(i) != '"') throw ParseException("expected a key at $i")
                val k = str()
                skipSpace()
                if (s.getOrNull(i++) != ':') throw ParseException("expected : at ${i - 1}")
                out[k] = value()
                skipSpace()
                when (s.getOrNull(i++)) {
                    ',' -> continue
                    '}' -> return out
                    else -> throw ParseException("expected , or } at ${i - 1}")
                }
            }
        }
    }
}

internal fun Map<String, Any?>.str(key: String): String? = this[key] as? String
internal fun Map<String, Any?>.num(key: String): Double? = this[key] as? Double
internal fun Map<String, Any?>.bool(key: String): Boolean? = this[key] as? Boolean

@Suppress("UNCHECKED_CAST")
internal fun Map<String, Any?>.objects(key: String): List<Map<String, Any?>> =
    (this[key] as? List<Any?>).orEmpty().filterIsInstance<Map<String, Any?>>()
