"""The session-state keys the dashboard's pages share: one name for each, and what it holds.

``st.session_state`` lives as long as a browser session, across reruns and page changes. Pages and
``streamlit_app.py`` reach it only through the names below (``tests/test_app_state.py`` fails on a
key spelled as a string literal), so this file lists every value that outlives one run of a page.
Widget keys that no code reads back through ``st.session_state`` stay with their widgets.
"""

from __future__ import annotations

#: Demo mode: this visitor's owner id. Written by ``common.identify_visitor`` (the sidebar, on
#: every page); read by ``common.owner_kwargs`` for each change a page makes to the store.
OWNER = "owner"
#: Demo mode: the random token the owner id is made from, also kept in the visitor's cookie.
#: Written and read by ``common.identify_visitor``.
VISITOR_TOKEN = "visitor_token"

#: Train page: the last fit (``result``, ``roc``, ``points`` of a regressor, ``weights``, ``label``),
#: shown until the next fit.
TRAIN_RESULT = "train_result"
#: Train page: the ref the last fit was saved as (its "Open" button); dropped by the next fit.
TRAIN_SAVED = "train_saved"
#: Train page: the estimator selectbox (its widget key); dropped when the task changes to one without it.
TRAIN_ESTIMATOR = "train_estimator"

#: Train page: the ref a Save found identical to this result (nothing stored; its "Open" button).
TRAIN_DUPLICATE = "train_duplicate"

#: Every page: confirmations waiting for the next run, shown as toasts (``app_pages.feedback``).
TOASTS = "toasts"

#: Upload page: the record of the file last added, shown with its "Open" button.
UPLOADED = "uploaded"
#: Upload page: a line about that import (a bundle's own message, or why JSON parameters are not scored).
UPLOAD_MESSAGE = "upload_message"

#: Train page, "Compare estimators" (``app_pages/workbench.py``): ``((data identity, target, task), board)``,
#: the ``core.workbench.Leaderboard`` fitted for them, shown while those three stay chosen.
COMPARE_RESULT = "compare_result"
#: Train page, "Compare estimators": ``(ref, duplicate)`` of the last Save of a leaderboard row: the ref it was
#: saved as, or (``duplicate`` true) the identical version found instead of storing a copy; its "Open" button.
COMPARE_SAVED = "compare_saved"

#: Formats page: ``(ref, table)`` of the last comparison, shown while that version stays picked.
FORMAT_COMPARISON = "format_comparison"

#: Model detail page: ``{ref: Evaluation.to_dict()}``, the re-scores done in this session.
RESCORES = "rescores"
#: Model detail page: ``{ref: (table, engine)}``, the last one-row prediction of each version.
PREDICTIONS = "predictions"
#: Model detail page: ``{(ref, format): export}``, the files prepared for download.
EXPORTS = "exports"
#: Model detail page: the ref whose delete dialog is open (kept so the dialog's own clicks are seen).
DELETE_PENDING = "delete_pending"
#: Model detail page: ``(ref, freed bytes)`` of a delete, shown once after the rerun that follows it.
DELETED = "deleted"

#: The version pickers (``common.version_picker``) of the Model detail and Formats pages: each keeps
#: its choice under the keys the functions below make from its name.
DETAIL_PICKER = "detail"
FORMATS_PICKER = "formats"


def picker_name(picker: str) -> str:
    """The picker's model selectbox (its widget key): the name chosen."""
    return f"{picker}_name"


def picker_version(picker: str, name: str) -> str:
    """The picker's version selectbox for model ``name`` (one per name, so each keeps its choice)."""
    return f"{picker}_version_{name}"


def picker_link(picker: str) -> str:
    """The last ``?model=`` link the picker followed: a new link wins over what the selectboxes held."""
    return f"{picker}_link"
