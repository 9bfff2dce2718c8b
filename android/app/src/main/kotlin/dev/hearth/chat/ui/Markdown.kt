package dev.hearth.chat.ui

import androidx.compose.foundation.background
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.shape.RoundedCornerShape
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.remember
import androidx.compose.ui.Modifier
import androidx.compose.ui.text.AnnotatedString
import androidx.compose.ui.text.SpanStyle
import androidx.compose.ui.text.buildAnnotatedString
import androidx.compose.ui.text.font.FontFamily
import androidx.compose.ui.text.font.FontStyle
import androidx.compose.ui.text.font.FontWeight
import androidx.compose.ui.text.withStyle
import androidx.compose.ui.unit.dp
import dev.hearth.chat.logic.Markdown

/** Renders the blocks of [Markdown.parse] (the parser is plain Kotlin, tested on the JVM). */
@Composable
fun MarkdownText(text: String) {
    val blocks = remember(text) { Markdown.parse(text) }
    Column {
        for (b in blocks) {
            when (b) {
                is Markdown.Block.Paragraph -> Text(spans(b.spans))
                is Markdown.Block.Heading -> Text(
                    spans(b.spans),
                    style = if (b.level <= 2) MaterialTheme.typography.titleLarge else MaterialTheme.typography.titleMedium,
                )
                is Markdown.Block.Bullet -> Text(AnnotatedString((b.ordinal?.let { "$it. " } ?: "• ")) + spans(b.spans))
                is Markdown.Block.Code -> Text(
                    b.text,
                    fontFamily = FontFamily.Monospace,
                    style = MaterialTheme.typography.bodySmall,
                    modifier = Modifier
                        .fillMaxWidth()
                        .padding(vertical = 4.dp)
                        .background(MaterialTheme.colorScheme.surface, RoundedCornerShape(8.dp))
                        .padding(8.dp),
                )
            }
        }
    }
}

private fun spans(spans: List<Markdown.Span>): AnnotatedString = buildAnnotatedString {
    for (s in spans) {
        val style = SpanStyle(
            fontWeight = if (s.bold) FontWeight.Bold else null,
            fontStyle = if (s.italic) FontStyle.Italic else null,
            fontFamily = if (s.code) FontFamily.Monospace else null,
        )
        withStyle(style) { append(s.text) }
    }
}
