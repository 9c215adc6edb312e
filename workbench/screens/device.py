"""Dialog to pick the device; absent devices are listed, disabled, with the reason."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

CUDA_NOTE = ("On CUDA the scratch layers run one op per layer on Triton kernels once a self-check on "
             "that GPU passes (their speed there is not yet measured); without Triton, or if the check "
             "fails, they fall back to per-step operations, the activity log says why, and impl torch "
             "(Hyperparameters tab, or --impl torch: cuDNN, the same weights and checkpoints) is then much "
             "faster. On the CPU the scratch layers run fused C++ kernels and are the faster choice.")


class DeviceScreen(ModalScreen[str | None]):
    """Returns the chosen device name, or None on Esc."""

    BINDINGS = [("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    DeviceScreen { align: center middle; }
    DeviceScreen > Vertical {
        width: 80; height: auto; border: thick $primary; background: $surface; padding: 1 2;
    }
    DeviceScreen OptionList { height: auto; }
    DeviceScreen Label { width: 1fr; margin-bottom: 1; }
    """

    def __init__(self, devices: dict[str, str], current: str) -> None:
        super().__init__()
        self.devices = devices
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Device (now {self.current}); a running model moves at the next batch, "
                        "with its optimiser state.")
            options = []
            for name, reason in self.devices.items():
                text = name if not reason else f"{name}  — unavailable: {reason}"
                options.append(Option(text, id=name, disabled=bool(reason)))
            yield OptionList(*options, id="device-options")
            yield Label(CUDA_NOTE, id="device-impl-note")

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
