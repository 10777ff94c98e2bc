"""Every module a page imports, imported once per server process before any page runs.

Streamlit runs each visitor's script in its own thread of one process. On a fresh server several visitors'
first runs import the same libraries at the same moment, and some libraries look a module up in
``sys.modules`` without importing it (plotly asks whether pandas is loaded, and uses it if so): while one
visitor's table is still importing pandas, another visitor's chart finds it half-initialised and fails with
"partially initialized module 'pandas' has no attribute 'Series'". ``streamlit_app.py`` imports this module
first: Python lets one thread run a module's body and makes every other thread that imports it wait until
it is complete, so no page starts before all of these are whole.
"""

import pandas  # noqa: F401 (st.table and st.dataframe convert through pandas and pyarrow)
import plotly.graph_objects  # noqa: F401
import plotly.io  # noqa: F401
import pyarrow  # noqa: F401

# Not torchvision: only a missing dataset's download needs it, and it would add about 150 MB to every server.
import app_pages.common  # noqa: F401
from genmodels import registry

for _family in registry.FAMILIES.values():
    _family.model_class()  # every family's model module
