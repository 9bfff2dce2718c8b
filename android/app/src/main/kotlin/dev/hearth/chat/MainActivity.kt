package dev.hearth.chat

import android.os.Bundle
import android.os.PowerManager
import androidx.activity.ComponentActivity
import androidx.activity.compose.setContent
import androidx.activity.enableEdgeToEdge
import dev.hearth.chat.logic.ThermalLevel
import dev.hearth.chat.ui.HearthChatRoot

class MainActivity : ComponentActivity() {
    private val thermalListener = PowerManager.OnThermalStatusChangedListener { status ->
        chatState.onThermal(thermalLevel(status))
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        enableEdgeToEdge()
        setContent { HearthChatRoot(chatState) }
    }

    override fun onStart() {
        super.onStart()
        val pm = getSystemService(PowerManager::class.java)
        chatState.onThermal(thermalLevel(pm.currentThermalStatus))
        pm.addThermalStatusListener(mainExecutor, thermalListener)
    }

    override fun onStop() {
        getSystemService(PowerManager::class.java).removeThermalStatusListener(thermalListener)
        super.onStop()
    }

    private fun thermalLevel(status: Int) = when {
        status >= PowerManager.THERMAL_STATUS_CRITICAL -> ThermalLevel.CRITICAL
        status >= PowerManager.THERMAL_STATUS_SEVERE -> ThermalLevel.SERIOUS
        status >= PowerManager.THERMAL_STATUS_MODERATE -> ThermalLevel.FAIR
        else -> ThermalLevel.NOMINAL
    }
}
