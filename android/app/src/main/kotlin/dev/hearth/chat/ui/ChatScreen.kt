package dev.hearth.chat.ui

import android.content.Intent
import androidx.compose.foundation.background
import androidx.compose.foundation.clickable
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Box
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.Spacer
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.imePadding
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.layout.width
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.items
import androidx.compose.foundation.lazy.rememberLazyListState
import androidx.compose.foundation.shape.RoundedCornerShape
import androidx.compose.material.icons.Icons
import androidx.compose.material.icons.automirrored.filled.Send
import androidx.compose.material.icons.filled.ContentCopy
import androidx.compose.material.icons.filled.Edit
import androidx.compose.material.icons.filled.Refresh
import androidx.compose.material.icons.filled.Share
import androidx.compose.material.icons.filled.Stop
import androidx.compose.material3.Button
import androidx.compose.material3.Card
import androidx.compose.material3.Icon
import androidx.compose.material3.IconButton
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.setValue
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.platform.LocalClipboardManager
import androidx.compose.ui.platform.LocalContext
import androidx.compose.ui.text.AnnotatedString
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import dev.hearth.chat.ChatAppState
import dev.hearth.chat.logic.Author
import dev.hearth.chat.logic.ChatController
import dev.hearth.chat.logic.ChatMessage
import dev.hearth.chat.logic.ThermalLevel
import dev.hearth.chat.logic.ToolCard

@Composable
fun ChatScreen(app: ChatAppState, modifier: Modifier, onPickModel: () -> Unit) {
    val controller by app.controller.collectAsStateWithLifecycle()
    val ctl = controller
    if (ctl == null) {
        Column(modifier.fillMaxSize().padding(24.dp), verticalArrangement = Arrangement.Center) {
            Text("No model loaded.", style = MaterialTheme.typography.titleMedium)
            Text("Everything runs on this phone; nothing you type leaves it.")
            Spacer(Modifier.padding(8.dp))
            Button(onClick = onPickModel) { Text("Choose a model") }
        }
        return
    }
    ChatView(ctl, modifier)
}

@Composable
private fun ChatView(ctl: ChatController, modifier: Modifier) {
    val state by ctl.state.collectAsStateWithLifecycle()
    val list = rememberLazyListState()
    var editing by remember { mutableStateOf(false) }
    LaunchedEffect(state.messages.size, state.messages.lastOrNull()?.text?.length) {
        if (state.messages.isNotEmpty()) list.animateScrollToItem(state.messages.size - 1)
    }
    Column(modifier.fillMaxSize().imePadding()) {
        if (state.thermal >= ThermalLevel.SERIOUS) {
            Banner(
                if (state.thermal == ThermalLevel.CRITICAL) "The phone is too hot: generation is paused."
                else "The phone is hot: generation is slowed down.",
            )
        }
        state.notice?.let { Banner(it) }
        state.error?.let { Banner(it, onDismiss = ctl::dismissError) }
        LazyColumn(Modifier.weight(1f).fillMaxWidth(), state = list, contentPadding = androidx.compose.foundation.layout.PaddingValues(12.dp)) {
            items(state.messages, key = { it.id }) { m ->
                val isLastUser = m.id == state.messages.lastOrNull { it.author == Author.USER }?.id
                MessageView(
                    m,
                    canRegenerate = state.canRegenerate && m.id == state.messages.last().id,
                    canEdit = state.canEdit && isLastUser,
                    onRegenerate = { ctl.regenerate() },
                    onEdit = {
                        ctl.setDraft(m.text)
                        editing = true
                    },
                )
            }
        }
        if (state.canResume) {
            TextButton(onClick = { ctl.resume() }, modifier = Modifier.padding(horizontal = 12.dp)) { Text("Resume") }
        }
        Row(Modifier.fillMaxWidth().padding(8.dp), verticalAlignment = Alignment.CenterVertically) {
            OutlinedTextField(
                value = state.draft,
                onValueChange = ctl::setDraft,
                modifier = Modifier.weight(1f),
                placeholder = { Text(if (editing) "Edit your last message" else "Message") },
                maxLines = 6,
            )
            if (state.generating) {
                IconButton(onClick = ctl::stop) { Icon(Icons.Filled.Stop, contentDescription = "Stop") }
            } else {
                IconButton(
                    onClick = {
                        if (editing) ctl.editLast(state.draft) else ctl.send()
                        editing = false
                    },
                    enabled = state.draft.isNotBlank(),
                ) { Icon(Icons.AutoMirrored.Filled.Send, contentDescription = if (editing) "Save edit" else "Send") }
            }
        }
    }
}

@Composable
private fun Banner(text: String, onDismiss: (() -> Unit)? = null) {
    Row(
        Modifier.fillMaxWidth().background(MaterialTheme.colorScheme.errorContainer).padding(12.dp),
        verticalAlignment = Alignment.CenterVertically,
    ) {
        Text(text, Modifier.weight(1f), color = MaterialTheme.colorScheme.onErrorContainer)
        onDismiss?.let { TextButton(onClick = it) { Text("Dismiss") } }
    }
}

@Composable
private fun MessageView(
    m: ChatMessage,
    canRegenerate: Boolean,
    canEdit: Boolean,
    onRegenerate: () -> Unit,
    onEdit: () -> Unit,
) {
    val user = m.author == Author.USER
    val clipboard = LocalClipboardManager.current
    val context = LocalContext.current
    Box(Modifier.fillMaxWidth().padding(vertical = 4.dp), contentAlignment = if (user) Alignment.CenterEnd else Alignment.CenterStart) {
        Column(
            Modifier
                .background(
                    if (user) MaterialTheme.colorScheme.primaryContainer else MaterialTheme.colorScheme.surfaceVariant,
                    RoundedCornerShape(16.dp),
                )
                .padding(12.dp),
        ) {
            if (m.thinking.isNotEmpty()) ThinkingSection(m)
            m.toolCards.forEach { ToolCardView(it) }
            if (user) Text(m.text) else MarkdownText(m.text + if (m.streaming) " ▍" else "")
            m.stats?.let { Text(it.summary(), style = MaterialTheme.typography.labelSmall) }
            if (!m.streaming) {
                Row {
                    IconButton(onClick = { clipboard.setText(AnnotatedString(m.text)) }) {
                        Icon(Icons.Filled.ContentCopy, contentDescription = "Copy")
                    }
                    IconButton(onClick = {
                        val send = Intent(Intent.ACTION_SEND).setType("text/plain").putExtra(Intent.EXTRA_TEXT, m.text)
                        context.startActivity(Intent.createChooser(send, null))
                    }) { Icon(Icons.Filled.Share, contentDescription = "Share") }
                    if (canRegenerate) IconButton(onClick = onRegenerate) { Icon(Icons.Filled.Refresh, contentDescription = "Regenerate") }
                    if (canEdit) IconButton(onClick = onEdit) { Icon(Icons.Filled.Edit, contentDescription = "Edit") }
                }
            }
        }
    }
}

@Composable
private fun ThinkingSection(m: ChatMessage) {
    var open by remember { mutableStateOf(false) }
    Column(Modifier.fillMaxWidth().clickable { open = !open }.padding(bottom = 6.dp)) {
        Text(
            (if (open) "▾ " else "▸ ") + "Thinking · ${m.thinkingTokens} tokens" + if (m.streaming && m.text.isEmpty()) "…" else "",
            style = MaterialTheme.typography.labelMedium,
        )
        if (open) Text(m.thinking, style = MaterialTheme.typography.bodySmall, color = MaterialTheme.colorScheme.onSurfaceVariant)
    }
}

@Composable
private fun ToolCardView(card: ToolCard) {
    Card(Modifier.fillMaxWidth().padding(vertical = 4.dp)) {
        Column(Modifier.padding(10.dp)) {
            Text("Tool · ${card.name}", style = MaterialTheme.typography.labelLarge)
            Text(card.argumentsJson, style = MaterialTheme.typography.bodySmall)
            Spacer(Modifier.width(4.dp))
            when {
                card.error != null -> Text("Failed: ${card.error}", color = MaterialTheme.colorScheme.error)
                card.resultJson != null -> Text("→ ${card.resultJson}", style = MaterialTheme.typography.bodySmall)
                else -> Text("Running…", style = MaterialTheme.typography.bodySmall)
            }
        }
    }
}
