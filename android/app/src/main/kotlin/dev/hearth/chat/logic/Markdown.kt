package dev.hearth.chat.logic

/**
 * The Markdown subset chat answers use, parsed into blocks the UI renders (Compose builds an
 * AnnotatedString from it; SwiftUI uses Foundation's `AttributedString(markdown:)` instead).
 * Unfinished syntax while streaming (an open ``` or `**`) renders as plain text until closed.
 */
object Markdown {
    data class Span(val text: String, val bold: Boolean = false, val italic: Boolean = false, val code: Boolean = false)

    sealed interface Block {
        data class Paragraph(val spans: List<Span>) : Block
        data class Heading(val level: Int, val spans: List<Span>) : Block
        data class Bullet(val spans: List<Span>, val ordinal: Int? = null) : Block
        data class Code(val text: String, val language: String?) : Block
    }

    fun parse(text: String): List<Block> {
        val out = mutableListOf<Block>()
        val para = StringBuilder()
        fun flush() {
            if (para.isNotBlank()) out.add(Block.Paragraph(inline(para.toString().trim())))
            para.clear()
        }
        val lines = text.lines()
        var i = 0
        while (i < lines.size) {
            val line = lines[i]
            val trimmed = line.trimStart()
            when {
                trimmed.startsWith("```") -> {
                    val end = (i + 1 until lines.size).firstOrNull { lines[it].trimStart().startsWith("```") }
                    flush()
                    val body = lines.subList(i + 1, end ?: lines.size).joinToString("\n")
                    out.add(Block.Code(body, trimmed.removePrefix("```").trim().ifEmpty { null }))
                    i = (end ?: lines.size) + 1
                    continue
                }
                trimmed.startsWith("#") && trimmed.trimStart('#').startsWith(" ") -> {
                    flush()
                    val level = trimmed.takeWhile { it == '#' }.length.coerceAtMost(6)
                    out.add(Block.Heading(level, inline(trimmed.drop(level).trim())))
                }
                trimmed.startsWith("- ") || trimmed.startsWith("* ") -> {
                    flush()
                    out.add(Block.Bullet(inline(trimmed.drop(2).trim())))
                }
                Regex("""^\d+[.)] """).containsMatchIn(trimmed) -> {
                    flush()
                    val n = trimmed.takeWhile { it.isDigit() }
                    out.add(Block.Bullet(inline(trimmed.drop(n.length + 2).trim()), n.toInt()))
                }
                line.isBlank() -> flush()
                else -> para.append(line).append('\n')
            }
            i++
        }
        flush()
        return out
    }

    /** `**bold**`, `*italic*` / `_italic_`, `` `code` ``; unmatched markers stay literal. */
    fun inline(text: String): List<Span> {
        val out = mutableListOf<Span>()
        val plain = StringBuilder()
        fun emit(s: Span) {
            if (plain.isNotEmpty()) out.add(Span(plain.toString())).also { plain.clear() }
            out.add(s)
        }
        var i = 0
        while (i < text.length) {
            val rest = text.substring(i)
            val (marker, kind) = when {
                rest.startsWith("`") -> "`" to 'c'
                rest.startsWith("**") -> "**" to 'b'
                rest.startsWith("__") -> "__" to 'b'
                rest.startsWith("*") -> "*" to 'i'
                rest.startsWith("_") && (i == 0 || !text[i - 1].isLetterOrDigit()) -> "_" to 'i'
                else -> "" to ' '
            }
            val close = if (marker.isEmpty()) -1 else text.indexOf(marker, i + marker.length)
            if (close > i + marker.length) {
                val inner = text.substring(i + marker.length, close)
                emit(Span(inner, bold = kind == 'b', italic = kind == 'i', code = kind == 'c'))
                i = close + marker.length
            } else {
                plain.append(text[i])
                i++
            }
        }
        if (plain.isNotEmpty()) out.add(Span(plain.toString()))
        return out
    }
}
