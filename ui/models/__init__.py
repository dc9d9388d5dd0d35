"""Qt item models adapting plain Python data (every one passes qtmodeltester)."""
