"""RNN Workbench TUI: a Textual app over rnn_engine."""
