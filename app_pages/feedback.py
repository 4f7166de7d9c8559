"""Confirmations as toasts that survive the rerun a change makes (the sidebar recounts after a save).

A page calls ``toast_later`` before ``st.rerun()``; ``streamlit_app.py`` shows what is pending at
the top of the next run, so the confirmation appears once, where the eye is, whatever page follows.
"""

from __future__ import annotations

import streamlit as st

from app_pages.state import TOASTS


def toast_later(message: str, icon: str = ":material/check_circle:") -> None:
    """Show ``message`` as a toast on the next run (or this one, if no rerun follows)."""
    st.session_state.setdefault(TOASTS, []).append((message, icon))


def show_toasts() -> None:
    """Each pending toast once."""
    for message, icon in st.session_state.pop(TOASTS, []):
        st.toast(message, icon=icon)
