"""Docks that never push the window off the screen.

napari stacks every dock widget of one side on top of each other, and the window grows
until all of their minimum heights fit. Each of our widgets watches for being docked: if
the window would have to grow (past its height when the widget was docked, or past the
screen), the new dock joins the dock above it as a tab instead, and the window keeps its
height.
"""

from __future__ import annotations

from qtpy.QtCore import QEvent, QObject, QTimer
from qtpy.QtWidgets import QDockWidget, QMainWindow


def keep_window_on_screen(widget) -> None:
    """Make ``widget`` (the Qt widget napari docks) tab itself with a neighbouring dock
    whenever docking it would make the main window taller."""
    _DockWatch(widget)


class QtEventWatch(QObject):
    """Calls ``callback()`` when ``widget`` receives a Qt event of ``event_type``
    (``QEvent.Type.ParentChange``: docked or closed; ``QEvent.Type.Show``); with ``once``,
    only the first time. The widget owns the watch."""

    def __init__(self, widget, event_type, callback, once: bool = False):
        super().__init__(widget)
        self._event_type = event_type
        self._callback = callback
        self._once = once
        widget.installEventFilter(self)

    def eventFilter(self, watched, event):
        if event.type() == self._event_type:
            if self._once:
                watched.removeEventFilter(self)
            self._callback()
        return False


class _DockWatch:
    """Checks the window's height just after ``widget`` is docked, and again as the
    window's layout settles (docks take their sizes over a few event-loop turns)."""

    CHECKS_MS = (0, 50, 200, 600)

    def __init__(self, widget):
        self._widget = widget
        self._limit = None  # the height the window may have, taken when docked
        QtEventWatch(widget, QEvent.Type.ParentChange, self._docked)

    def _docked(self) -> None:
        if self._widget.parent() is None:  # closed
            return
        self._limit = None
        for delay in self.CHECKS_MS:
            QTimer.singleShot(delay, self._fit)

    def _fit(self) -> None:
        dock, window = _dock_and_window(self._widget)
        if dock is None or dock.isFloating():
            return
        if self._limit is None:
            self._limit = _height_limit(window)
        limit = self._limit
        for i, neighbour in enumerate(_neighbours(window, dock)):
            if max(window.minimumSizeHint().height(), window.height()) <= limit:
                break
            if i == 0:  # joins the nearest dock as a tab ...
                window.tabifyDockWidget(neighbour, dock)
            else:  # ... and, if that is not enough, the next ones join the tabs
                window.tabifyDockWidget(dock, neighbour)
            dock.show()
            dock.raise_()
            window.resize(window.width(), limit)


def _dock_and_window(widget):
    """The QDockWidget holding ``widget`` and its main window (None, None if undocked)."""
    try:
        parent = widget.parentWidget()
    except RuntimeError:  # deleted on the Qt side
        return None, None
    while parent is not None and not isinstance(parent, QDockWidget):
        parent = parent.parentWidget()
    window = parent.parentWidget() if parent is not None else None
    while window is not None and not isinstance(window, QMainWindow):
        window = window.parentWidget()
    return (parent, window) if window is not None else (None, None)


def _height_limit(window: QMainWindow) -> int:
    """The height the window may have: what it has now (before the new dock has grown
    it), and never more than the screen's available height."""
    screen = window.screen()
    available = screen.availableGeometry().height() if screen is not None else None
    return min(window.height(), available) if available else window.height()


def _neighbours(window: QMainWindow, dock: QDockWidget) -> list[QDockWidget]:
    """Visible docks on the same side as ``dock``, nearest (docked last) first, one per
    group of tabs."""
    area = window.dockWidgetArea(dock)
    grouped = {id(dock)} | {id(d) for d in window.tabifiedDockWidgets(dock)}
    docks = [
        d
        for d in window.findChildren(QDockWidget)
        if id(d) not in grouped
        and d.isVisible()
        and not d.isFloating()
        and window.dockWidgetArea(d) == area
    ]
    docks.sort(key=lambda d: d.geometry().top(), reverse=True)
    return docks
