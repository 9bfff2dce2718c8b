package dev.hearth.chat.ui

import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.rememberScrollState
import androidx.compose.foundation.verticalScroll
import androidx.compose.material3.FilterChip
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Slider
import androidx.compose.material3.Switch
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import dev.hearth.Backend
import dev.hearth.chat.ChatAppState
import dev.hearth.chat.logic.ChatSettings
import dev.hearth.chat.logic.backendReport

@Composable
fun SettingsScreen(app: ChatAppState, modifier: Modifier) {
    val s by app.settings.settings.collectAsStateWithLifecycle()
    val info by app.modelInfo.collectAsStateWithLifecycle()
    val m = app.settings
    Column(modifier.fillMaxSize().verticalScroll(rememberScrollState()).padding(16.dp)) {
        Text("Instructions", style = MaterialTheme.typography.titleSmall)
        OutlinedTextField(value = s.instructions, onValueChange = m::setInstructions, modifier = Modifier.fillMaxWidth(), minLines = 3)
        Text("Applies to new chats.", style = MaterialTheme.typography.bodySmall)

        Text("Temperature %.2f".format(s.temperature), Modifier.padding(top = 12.dp))
        Slider(value = s.temperature, onValueChange = m::setTemperature, valueRange = 0f..2f)
        Text("Top-p %.2f".format(s.topP))
        Slider(value = s.topP, onValueChange = m::setTopP, valueRange = 0.05f..1f)

        Text("Thinking budget: " + (s.thinkingBudget?.let { "$it tokens" } ?: "model default"))
        Row {
            listOf(null, 256, 1024, 4096).forEach { b ->
                FilterChip(selected = s.thinkingBudget == b, onClick = { m.setThinkingBudget(b) }, label = { Text(b?.toString() ?: "Default") })
            }
        }

        Text("Context length: ${s.contextLength} tokens", Modifier.padding(top = 12.dp))
        Row {
            ChatSettings.CONTEXT_LENGTHS.forEach { n ->
                FilterChip(selected = s.contextLength == n, onClick = { m.setContextLength(n) }, label = { Text("${n / 1024}k") })
            }
        }

        Text("Backend", Modifier.padding(top = 12.dp))
        Row {
            Backend.entries.forEach { b ->
                FilterChip(selected = s.backend == b, onClick = { m.setBackend(b) }, label = { Text(b.name.lowercase().replaceFirstChar { it.uppercase() }) })
            }
        }
        Text(backendReport(s.backend, info), style = MaterialTheme.typography.bodySmall)
        if (app.settingsNeedReload()) Text("Reload the model (Models tab) for backend and context changes to apply.", color = MaterialTheme.colorScheme.tertiary)

        Row(Modifier.padding(top = 12.dp)) {
            Text("Demo tools (date & time, calculator)", Modifier.weight(1f))
            Switch(checked = s.toolsEnabled, onCheckedChange = m::setToolsEnabled)
        }
        Text("Hearth runs entirely on this device: no account, no analytics, no network except the downloads you start.", style = MaterialTheme.typography.bodySmall, modifier = Modifier.padding(top = 16.dp))
    }
}
