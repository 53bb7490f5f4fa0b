"""FLOPs, parameters, memory and latency: functions that measure and return data, never print."""
