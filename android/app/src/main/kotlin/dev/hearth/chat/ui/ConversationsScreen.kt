package dev.hearth.chat.ui

import androidx.compose.foundation.clickable
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.items
import androidx.compose.material.icons.Icons
import androidx.compose.material.icons.filled.Delete
import androidx.compose.material.icons.filled.Edit
import androidx.compose.material3.AlertDialog
import androidx.compose.material3.Button
import androidx.compose.material3.Icon
import androidx.compose.material3.IconButton
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import dev.hearth.chat.ChatAppState
import dev.hearth.chat.logic.ConversationSummary
import java.text.DateFormat
import java.util.Date

@Composable
fun ConversationsScreen(app: ChatAppState, modifier: Modifier, onOpen: () -> Unit) {
    val list by app.conversations.conversations.collectAsStateWithLifecycle()
    var renaming by remember { mutableStateOf<ConversationSummary?>(null) }
    Column(modifier.fillMaxSize().padding(12.dp)) {
        Button(onClick = { app.openConversation(null); onOpen() }) { Text("New chat") }
        LazyColumn {
            items(list, key = { it.id }) { c ->
                Row(Modifier.fillMaxWidth().clickable { app.openConversation(c.id); onOpen() }.padding(vertical = 8.dp)) {
                    Column(Modifier.weight(1f)) {
                        Text(c.title, style = MaterialTheme.typography.titleSmall)
                        Text("${c.messageCount} messages · ${DateFormat.getDateTimeInstance().format(Date(c.updatedAtMs))}", style = MaterialTheme.typography.bodySmall)
                    }
                    IconButton(onClick = { renaming = c }) { Icon(Icons.Filled.Edit, contentDescription = "Rename") }
                    IconButton(onClick = { app.deleteConversation(c.id) }) { Icon(Icons.Filled.Delete, contentDescription = "Delete") }
                }
            }
        }
    }
    renaming?.let { c ->
        var title by remember(c.id) { mutableStateOf(c.title) }
        AlertDialog(
            onDismissRequest = { renaming = null },
            title = { Text("Rename") },
            text = { OutlinedTextField(value = title, onValueChange = { title = it }, singleLine = true) },
            confirmButton = { TextButton(onClick = { app.conversations.rename(c.id, title); app.conversations.refresh(); renaming = null }) { Text("Save") } },
            dismissButton = { TextButton(onClick = { renaming = null }) { Text("Cancel") } },
        )
    }
}
