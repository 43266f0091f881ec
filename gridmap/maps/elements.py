"""folium elements of the dashboard that folium has no class for (imports folium: import this module lazily).

- :class:`ScriptLayer`: a layer made by the page's own script (``GridmapDashboard.…``), which fills it
  from the API — GeoJSON boundaries, the case markers — and so follows the filters without a reload.
- :class:`Legend`: a Leaflet control with the legend's HTML.
- :class:`DashboardConfig`: loads the dashboard's JS/CSS and gives it the map and the city's facts (first);
  :class:`DashboardStart` hands it the layers and starts it (last).
"""

from __future__ import annotations

from branca.element import MacroElement
from folium.elements import JSCSSMixin
from folium.map import Layer
from folium.template import Template
from folium.utilities import JsCode


class ScriptLayer(Layer):
    """A map layer built by a JavaScript expression evaluated in the page (e.g. an empty ``L.geoJSON``)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = {{ this.expression }};
        {% endmacro %}
    """)

    def __init__(self, expression: str, name: str, show: bool = True) -> None:
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "ScriptLayer"
        self.expression = JsCode(expression)


class Legend(MacroElement):
    """The map's legend, a collapsible control in a corner (``html`` is trusted: built by gridmap)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.control({position: {{ this.position|tojson }}});
        {{ this.get_name() }}.onAdd = function () {
            var box = L.DomUtil.create("div", "gm-legend leaflet-bar");
            box.innerHTML = {{ this.html|tojson }};
            L.DomEvent.disableClickPropagation(box);
            L.DomEvent.disableScrollPropagation(box);
            return box;
        };
        {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        {% endmacro %}
    """)

    def __init__(self, html: str, position: str = "bottomleft") -> None:
        super().__init__()
        self._name = "Legend"
        self.html = html
        self.position = position


class DashboardConfig(JSCSSMixin):
    """Load ``dashboard.js``/``.css`` and give it the map and the city's facts before any layer is made."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        GridmapDashboard.configure({{ this._parent.get_name() }}, {{ this.config|tojson }});
        {% endmacro %}
    """)

    def __init__(self, config: dict, script: str, stylesheet: str) -> None:
        super().__init__()
        self._name = "DashboardConfig"
        self.config = config
        self.default_js = [("gridmap_dashboard", script)]
        self.default_css = [("gridmap_dashboard_css", stylesheet)]


class DashboardStart(MacroElement):
    """Hand the dashboard its layers and start it (after the layer control and the legend exist)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        GridmapDashboard.start({
            {%- for key, layer in this.layers.items() %}
            {{ key|tojson }}: {{ layer.get_name() }},
            {%- endfor %}
        });
        {% endmacro %}
    """)

    def __init__(self, layers: dict) -> None:
        super().__init__()
        self._name = "DashboardStart"
        self.layers = layers
