"""genmodels: an interactive zoo of deep generative models for teaching.

Run with ``streamlit run streamlit_app.py``. The sidebar chooses where checkpoints come from;
each page explains one model family with the checkpoints from that source.
"""

import ctypes
import sys

import streamlit as st

import app_pages.startup  # noqa: F401 (before any page: every page's imports complete before any page runs)
from app_pages.common import HOSTING, page_turn, source_sidebar
from genmodels import registry


@st.cache_resource  # once per server process, not on every rerun of this script
def glibc():
    """The C library, if it is glibc (on Linux); None elsewhere (musl, macOS, Windows: nothing to do)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None  # glibc has it, musl does not


@st.cache_resource  # once per server process
def return_freed_memory_to_the_os() -> None:
    """Hosted: keep a small host's memory flat (glibc only), at a cost in speed.

    glibc raises its mmap threshold after the first large free, so later large tensors (a batch of
    decoded images, an IWAE chunk) come from the heap and stay resident after they are freed. A
    fixed 256 KB threshold and two malloc arenas give that memory back: about 100 MB less here. The price: every
    large tensor is a fresh mapping the kernel must zero, and a loop of convolutions runs about 1.5 times slower
    (``python -m bench --only malloc``). A hosted demo has 690 MB for every visitor and pays it; run locally, the
    app keeps glibc's own policy and its speed.
    """
    libc = glibc()
    if libc is not None:
        m_mmap_threshold, m_arena_max = -3, -8  # from malloc.h
        libc.mallopt(m_mmap_threshold, 256 * 1024)
        libc.mallopt(m_arena_max, 2)


@st.cache_resource
def hide_error_details() -> None:
    """Hosted: an unexpected exception shows a generic message in the browser, never a traceback with the server's
    paths (the console keeps the details)."""
    st.set_option("client.showErrorDetails", "none")


if HOSTING.hosted:
    return_freed_memory_to_the_os()
    hide_error_details()

st.set_page_config(page_title="genmodels: a zoo of generative models", page_icon=":material/blur_on:",
                   layout="wide")

PAGES = {registry.OVERVIEW_SECTION: [st.Page(p.path, title=p.title, icon=p.icon, default=i == 0)
                                     for i, p in enumerate(registry.OVERVIEW)]}  # the zoo is the home page
for section, pages in registry.sections().items():  # every family's pages, as the registry lists them
    PAGES[section] = [st.Page(p.path, title=p.title, icon=p.icon) for p in pages]

source_sidebar()
with page_turn():  # the thread policy; hosted: at most a few pages compute at once (their memory adds up)
    st.navigation(PAGES).run()
if glibc() is not None:
    glibc().malloc_trim(0)  # what this run freed goes back to the OS (a few ms): ten visitors' peaks do not add up
