/* gridmap · 指挥中心 supervisor dashboard. folium builds the map, its (empty) layers, the layer control and the
   legend; this script fills them from the API with the logged-in user's rights, and keeps them current:
   filters re-fetch without a reload, the cases are polled every 10 s, actions go through the case API with
   the bearer token kept in sessionStorage (the HttpOnly cookie authenticates the page's GETs: tiles, photos).
   No build step, no CDN. zh-CN first; the English switch swaps every [data-en] text. */
"use strict";

const GridmapDashboard = (() => {
  const API = "/api/v1";
  const STORE = { token: "gridmap.dashboard.token", user: "gridmap.dashboard.user", lang: "gridmap.lang" };
  const POLL_MS = 10000;
  const SLOW_POLL_MS = 30000;
  const PAGE_SIZE = 15;
  const FINAL = new Set(["closed", "rejected", "voided", "merged"]);
  const ROLES = { inspector: ["监督员", "inspector"], acceptor: ["受理员", "acceptor"], shift_lead: ["值班长", "shift lead"],
                  dispatcher: ["派遣员", "dispatcher"], department: ["专业部门", "department"],
                  supervisor: ["指挥长", "supervisor"], analyst: ["分析员", "analyst"], admin: ["管理员", "admin"] };
  const CLOSE_KINDS = { normal: ["正常结案", "normal"], overdue: ["超期结案", "overdue"], error: ["错误结案", "error"],
                        special: ["特殊结案", "special"] };

  if (window.L && !L.DomEvent.fakeStop) {
    // Leaflet.VectorGrid 1.3 calls fakeStop, which Leaflet 1.8 removed
    L.DomEvent.fakeStop = (event) => L.DomEvent.stopPropagation(event);
  }

  let lang = localStorage.getItem(STORE.lang) === "en" ? "en" : "zh";
  const state = {
    map: null, config: null, layers: {}, token: sessionStorage.getItem(STORE.token),
    user: JSON.parse(sessionStorage.getItem(STORE.user) || "null"),
    cases: new Map(), markers: new Map(), table: { sort: "reported_at", descending: true, page: 1, total: 0, items: [] },
    gridValues: {}, gridOpen: {}, gridOverdue: {}, drawn: {}, loaded: {}, started: false, busy: false,
    ready: { cases: false, grids: false }, timings: {}, dialog: null, headline: null, lastUpdate: null,
    prefetch: new Map(),
  };
  const $ = (id) => document.getElementById(id);
  const tr = (zh, en) => (lang === "en" ? en : zh);
  const pair = (terms) => (terms ? tr(terms[0] ?? terms.zh, terms[1] ?? terms.en) : "");

  /* ---- small DOM helpers: text is never parsed as HTML ---- */
  const clean = (children) => children.flat(3).filter((c) => c !== null && c !== undefined && c !== false && c !== "");
  function h(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props)) {
      if (value === null || value === undefined || value === false) continue;
      if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    node.append(...clean(children));
    return node;
  }
  const when = (moment) => (moment ? new Intl.DateTimeFormat(lang === "en" ? "en-GB" : "zh-CN", {
    timeZone: state.config ? state.config.city.timezone : undefined, month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit" }).format(new Date(moment)) : "–");
  const department = (code) => {
    const found = code && state.config.departments.find((d) => d.code === code);
    return found ? `${code} ${tr(found.name, found.name_en || found.name)}` : (code || "–");
  };
  const classOf = (item) => state.config.classes.find((c) => c.code === item.class_code &&
                                                              c.case_type === item.case_type);
  const className = (item) => {
    const cls = classOf(item);
    return cls ? tr(cls.name, cls.name_en) : (item.class_name || item.class_code);
  };
  const statusTerm = (status) => pair(state.config.statuses[status]) || status;
  const actionTerm = (action) => pair(state.config.actions[action]) || action;
  const lightKey = (item) => (FINAL.has(item.status) ? "closed" : item.light || "none");
  const lightColour = (item) => state.config.palette.lights[lightKey(item)];
  const LIGHT_TERMS = { green: ["正常", "on time"], yellow: ["预警", "due soon"], red: ["超时", "overdue"],
                        none: ["无时限", "no clock"], closed: ["已结束", "closed"] };

  /* ---- the API ---- */
  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }
  function detailOf(body, status) {
    const detail = body && body.detail;
    if (Array.isArray(detail)) return detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
    return detail ? String(detail) : `HTTP ${status}`;
  }
  async function api(path, { method = "GET", json, form, priority } = {}) {
    if (method === "GET" && state.prefetch.has(path)) {
      const early = state.prefetch.get(path);
      state.prefetch.delete(path);
      return early;
    }
    const headers = { Accept: "application/json" };
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    let body;
    if (form) body = new URLSearchParams(form);
    else if (json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(json); }
    const response = await fetch(API + path, { method, headers, body, credentials: "same-origin", priority });
    const data = response.status === 204 ? null : await response.json().catch(() => null);
    if (response.status === 401 && !form) showLogin();
    if (!response.ok) throw new ApiError(response.status, detailOf(data, response.status));
    return data;
  }
  function prefetch(paths) {
    // asked before the map's layers exist, so that the browser's six connections serve the page's data
    // before the dozens of tile requests the first view makes
    for (const path of paths) {
      const early = api(path);
      early.catch(() => {}); // whoever takes it handles the error
      state.prefetch.set(path, early);
    }
  }

  /* ---- log-in ---- */
  function bindLogin(onDone) {
    $("login-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      $("login-error").textContent = "";
      const form = new FormData(event.target);
      try {
        const token = await api("/auth/token", { method: "POST", form });
        state.token = token.access_token;
        state.user = { name: token.name, role: token.role };
        sessionStorage.setItem(STORE.token, state.token);
        sessionStorage.setItem(STORE.user, JSON.stringify(state.user));
        event.target.reset();
        onDone();
      } catch (error) {
        $("login-error").textContent = error.status === 401 ? tr("用户名或密码错误", "Wrong user name or password")
          : error.message;
      }
    });
  }
  function showLogin() {
    state.token = null;
    sessionStorage.removeItem(STORE.token);
    const box = $("login");
    if (box && box.hidden) { box.hidden = false; $("login-user").focus(); }
  }
  async function logOut() {
    try { await api("/auth/logout", { method: "POST" }); } catch (_) { /* the session may be gone already */ }
    sessionStorage.removeItem(STORE.token);
    sessionStorage.removeItem(STORE.user);
    window.location.replace("/");
  }

  /* ---- language ---- */
  function applyLanguage() {
    document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
    for (const node of document.querySelectorAll("[data-en]")) {
      if (node.dataset.zh === undefined) node.dataset.zh = node.textContent;
      node.textContent = lang === "en" ? node.dataset.en : node.dataset.zh;
    }
    const button = $("lang");
    if (button) button.textContent = lang === "en" ? "中文" : "EN";
  }
  function switchLanguage() {
    lang = lang === "en" ? "zh" : "en";
    localStorage.setItem(STORE.lang, lang);
    applyLanguage();
    if (state.started) { showUser(); renderHeadline(); renderTable(); refreshOpenPopup(); }
  }

  /* ---- layers folium creates (called from the map's script) ---- */
  function configure(map, config) {
    state.map = map;
    state.config = config;
    map.attributionControl.setPrefix(false);
    for (const line of config.attribution) map.attributionControl.addAttribution(escapeText(line));
    map.on("click", showFeaturesAt);
    if (state.token) prefetch(["/users/me", casesPath(), tablePath(), "/stats/headline", ...gridPaths()]);
  }
  const escapeText = (text) => text.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

  function boundaryLayer(key) {
    const style = { ...state.config.palette.boundaries[key], interactive: false };
    const layer = L.geoJSON(null, { style: () => style, interactive: false });
    layer.on("add", () => loadBoundary(key, layer));
    return layer;
  }
  async function loadBoundary(key, layer) {
    if (state.loaded[key]) return;
    state.loaded[key] = true;
    let data;
    try {
      data = await api(`/layers/${key}?limit=50000`, { priority: "low" });
    } catch (_) { // asked again when next shown (a session ended meanwhile has brought back the log-in)
      state.loaded[key] = false;
      return;
    }
    layer.addData(data);
    state.drawn[key] = data.features.length;
  }

  const STYLERS = {
    unit_grid(props, zoom) {
      const value = state.gridValues[props.code] || 0;
      const { breaks, colours } = state.config.palette.choropleth;
      let fill = null;
      for (let i = 0; i < breaks.length; i += 1) if (value >= breaks[i]) fill = colours[i];
      return { fill: true, fillColor: fill || "#ffffff", fillOpacity: fill ? 0.7 : 0, stroke: true,
               color: "#7b8794", weight: zoom >= 15 ? 0.9 : 0.4, opacity: 0.8 };
    },
    duty_grid: () => ({ ...state.config.palette.boundaries.duty_grid }),
    road(props, zoom) {
      const grade = state.config.palette.roads[props.grade_code] || { color: "#999999", weight: 1 };
      const scale = zoom >= 16 ? 1.3 : zoom >= 15 ? 1 : zoom >= 13 ? 0.6 : 0.4;
      return { color: grade.color, weight: Math.max(0.6, grade.weight * scale), opacity: 0.9 };
    },
    component(props, zoom) {
      if (props.count) {
        return { radius: Math.min(18, 3 + 2.2 * Math.log2(props.count + 1)), fill: true, fillColor: "#3b6ea5",
                 fillOpacity: 0.5, color: "#ffffff", weight: 1 };
      }
      const colour = state.config.palette.components[String(props.class_code || "").slice(0, 2)] || "#737373";
      return { radius: zoom >= 17 ? 5 : 3.5, fill: true, fillColor: colour, fillOpacity: 0.9,
               color: props.status && props.status !== "完好" ? "#d7301f" : "#ffffff", weight: 1 };
    },
  };
  function vectorOptions(key) {
    const styles = {};
    styles[key] = (props, zoom) => {
      state.drawn[key] = (state.drawn[key] || 0) + 1;
      return STYLERS[key](props, zoom);
    };
    return { rendererFactory: L.canvas.tile, vectorTileLayerStyles: styles, interactive: false,
             getFeatureId: (feature) => feature.properties.code, minZoom: state.config.tile_min_zoom[key] || 0,
             maxZoom: 20, fetchOptions: { credentials: "same-origin", priority: "low" }, updateWhenZooming: false,
             keepBuffer: 1 };
  }
  function caseLayer() {
    return L.featureGroup();
  }
  function tuneHeat() {
    // leaflet.heat dims points by 2^(maxZoom − zoom), and its maxZoom also greys the layer out in the layer
    // control beyond it: keep maxZoom at the map's, and scale the saturation so that about three cases
    // close together read as hot at every zoom
    const heat = state.layers.heat;
    const dimming = Math.pow(2, Math.max(0, Math.min(heat.options.maxZoom - state.map.getZoom(), 12)));
    heat.setOptions({ max: 3 / dimming });
  }

  /* ---- what is under a click: components, roads, duty and unit grids (tiles are not interactive, so that
         the layer on top does not swallow every click: the features of each tile are hit-tested here) ---- */
  function featuresAt(key, latlng) {
    const layer = state.layers[key];
    if (!layer || !state.map.hasLayer(layer) || !layer._vectorTiles) return [];
    const zoom = Math.round(state.map.getZoom());
    const size = layer.getTileSize();
    const pixel = state.map.project(latlng, zoom);
    const coords = L.point(Math.floor(pixel.x / size.x), Math.floor(pixel.y / size.y));
    coords.z = zoom;
    const renderer = layer._vectorTiles[layer._tileCoordsToKey(coords)];
    if (!renderer || !renderer._map) return [];
    const point = state.map.latLngToLayerPoint(latlng).subtract(renderer.getOffset());
    const found = [];
    for (const feature of Object.values(renderer._layers)) {
      if (feature._parts && !feature._pxBounds) feature._pxBounds = feature._getPixelBounds();
      if (feature._containsPoint(point)) found.push(feature.properties);
    }
    return found;
  }
  function showFeaturesAt(event) {
    const sections = [];
    const component = featuresAt("component", event.latlng).pop();
    if (component) sections.push(componentSection(component));
    const road = featuresAt("road", event.latlng).pop();
    if (road) sections.push(roadSection(road));
    const grid = featuresAt("unit_grid", event.latlng).pop();
    const duty = featuresAt("duty_grid", event.latlng).pop();
    if (grid) sections.push(gridSection(grid, event.latlng));
    else if (duty) sections.push(h("section", { class: "gm-popup" }, h("h4", {}, tr("责任网格 ", "Duty grid "), duty.code),
                                   h("p", {}, duty.name)));
    if (!sections.length) return;
    L.popup({ maxWidth: 360, minWidth: 240, className: "gm-feature-popup" }).setLatLng(event.latlng)
      .setContent(h("div", {}, sections)).openOn(state.map);
  }
  function facts(rows) {
    return h("dl", {}, rows.filter(([, value]) => value !== null && value !== undefined && value !== "")
      .map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
  }
  function gridSection(grid, latlng) {
    const inspectors = h("span", { class: "gm-muted" }, "…");
    if (grid.duty_grid_code) loadInspectors(grid.duty_grid_code, latlng, inspectors);
    return h("section", { class: "gm-popup gm-grid-popup" }, h("h4", {}, tr("单元网格 ", "Unit grid "), grid.code),
      facts([[tr("社区", "Community"), `${grid.community_name || ""} ${grid.community_code || ""}`],
             [tr("责任网格", "Duty grid"), grid.duty_grid_code || "–"], [tr("监督员", "Inspectors"), inspectors],
             [tr("区域类别", "Area class"), grid.area_class], [tr("属地单位", "Responsible"), department(grid.responsible_department_code)],
             [tr("在办案件", "Open cases"), String(state.gridOpen[grid.code] || 0)],
             [tr("超期案件", "Overdue"), String(state.gridOverdue[grid.code] || 0)]]));
  }
  async function loadInspectors(code, latlng, target) {
    const d = 0.0005;
    const box = [latlng.lng - d, latlng.lat - d, latlng.lng + d, latlng.lat + d].map((v) => v.toFixed(6)).join(",");
    try {
      const data = await api(`/layers/duty_grid?bbox=${box}&limit=50`);
      const found = data.features.find((f) => f.properties.code === code);
      target.textContent = (found && found.properties.inspectors) || tr("未配置", "none assigned");
    } catch (_) { target.textContent = "–"; }
  }
  function roadSection(road) {
    const grade = state.config.road_grades.find((g) => g.code === road.grade_code);
    return h("section", { class: "gm-popup" }, h("h4", {}, tr("道路 ", "Road "), road.name || road.code),
      facts([[tr("编码", "Code"), road.code], [tr("等级", "Grade"), grade ? tr(grade.name, grade.name_en) : road.grade_code]]));
  }
  function componentSection(item) {
    if (item.count) {
      return h("section", { class: "gm-popup" }, h("h4", {}, tr(`${item.count} 个部件`, `${item.count} components`)),
        h("p", { class: "gm-muted" }, tr("放大地图查看每个部件", "zoom in to see each one")));
    }
    const cls = state.config.classes.find((c) => c.case_type === "component" && c.code === item.class_code);
    return h("section", { class: "gm-popup gm-component-popup" }, h("h4", {}, tr("部件 ", "Component "), item.code),
      facts([[tr("类别", "Class"), `${item.class_code} ${cls ? tr(cls.name, cls.name_en) : item.class_name || ""}`],
             [tr("状态", "Status"), item.status], [tr("主管部门", "Competent"), department(item.competent_department_code)],
             [tr("权属单位", "Owner"), department(item.owner_department_code)],
             [tr("养护单位", "Maintainer"), department(item.maintainer_department_code)]]));
  }

  /* ---- filters ---- */
  function filterParams() {
    const params = new URLSearchParams();
    const status = $("f-status").value;
    if (status === "") params.set("open_only", "true");
    else if (status !== "all") params.append("status", status);
    for (const [id, name] of [["f-light", "light"], ["f-class", "class_code"], ["f-department", "department"],
                              ["f-district", "district"], ["f-street", "street"], ["f-from", "date_from"],
                              ["f-to", "date_to"]]) {
      if ($(id).value) params.set(name, $(id).value);
    }
    return params;
  }
  function bindFilters() {
    const form = $("filters");
    form.addEventListener("change", (event) => {
      if (event.target.id === "f-metric") { refreshGrids(); return; }
      state.table.page = 1;
      refreshAll();
    });
    form.addEventListener("reset", () => setTimeout(() => { state.table.page = 1; refreshAll(); }, 0));
    form.addEventListener("submit", (event) => event.preventDefault());
  }

  /* ---- cases on the map ---- */
  const casesPath = () => `/cases.geojson?${filterParams()}`;
  async function refreshCases() {
    const data = await api(casesPath());
    const seen = new Set();
    for (const feature of data.features) {
      const item = { ...feature.properties, lon: feature.geometry.coordinates[0], lat: feature.geometry.coordinates[1] };
      seen.add(item.number);
      const known = state.cases.get(item.number);
      state.cases.set(item.number, { ...(known || {}), ...item });
      placeMarker(item, !known || known.version !== item.version || known.light !== item.light);
    }
    for (const number of [...state.markers.keys()]) if (!seen.has(number)) removeMarker(number);
    state.layers.heat.setLatLngs(data.features.map((f) => [f.geometry.coordinates[1], f.geometry.coordinates[0], 1]));
    state.drawn.cases = state.markers.size;
    state.drawn.heat = data.features.length;
    if (!state.ready.cases) { state.ready.cases = true; state.timings.cases = performance.now(); checkReady(); }
  }
  function placeMarker(item, changed) {
    let marker = state.markers.get(item.number);
    if (marker && !changed) return;
    const style = { radius: 7, fillColor: lightColour(item), fillOpacity: 0.95, color: item.ambiguous ? "#1b1f23" : "#ffffff",
                    weight: 2, dashArray: item.ambiguous ? "3 2" : null, bubblingMouseEvents: false };
    if (marker) {
      marker.setStyle(style);
      marker.setLatLng([item.lat, item.lon]);
      if (marker.isPopupOpen()) marker.setPopupContent(casePopup(item.number));
      return;
    }
    marker = L.circleMarker([item.lat, item.lon], { ...style, className: `gm-case gm-case-${item.number}` });
    marker.bindPopup(() => casePopup(item.number), { maxWidth: 380, minWidth: 280, className: "gm-case-popup" });
    marker.bindTooltip(() => `${item.number} · ${className(state.cases.get(item.number) || item)}`);
    marker.addTo(state.layers.cases);
    state.markers.set(item.number, marker);
  }
  function removeMarker(number) {
    const marker = state.markers.get(number);
    if (marker) { state.layers.cases.removeLayer(marker); state.markers.delete(number); }
  }
  function refreshOpenPopup() {
    for (const [number, marker] of state.markers) if (marker.isPopupOpen()) marker.setPopupContent(casePopup(number));
  }

  function casePopup(number) {
    const item = state.cases.get(number);
    const evidence = h("div", { class: "gm-evidence" }, tr("路由依据加载中…", "loading the routing evidence…"));
    loadEvidence(number, evidence);
    const photos = (item.photos || []).slice(0, 4).map((sha) => h("a", { href: `${API}/photos/${sha}`, target: "_blank" },
      h("img", { src: `${API}/photos/${sha}?thumbnail=true`, alt: tr("现场照片", "photo"), loading: "lazy" })));
    return h("div", { class: "gm-popup", "data-number": number },
      h("h4", {}, className(item), " ", h("small", {}, `${item.case_type === "event" ? tr("事件", "event") : tr("部件", "component")} ${item.class_code}`)),
      facts([[tr("编号", "Number"), number], [tr("状态", "Status"), statusTerm(item.status)],
             [tr("灯色", "Light"), h("span", { class: `gm-light gm-light-${lightKey(item)}` }, pair(LIGHT_TERMS[lightKey(item)]))],
             [tr("上报时间", "Reported"), when(item.reported_at)], [tr("责任部门", "Department"), department(item.department)],
             [tr("建议部门", "Proposed"), item.proposed_department !== item.department ? department(item.proposed_department) : null],
             [tr("阶段时限", "Stage due"), when(item.stage_deadline)],
             [tr("处置时限", "Disposal due"), item.disposal_deadline ? when(item.disposal_deadline) : null],
             [tr("描述", "Description"), item.description]]),
      item.ambiguous ? h("p", { class: "gm-warn" }, tr("存疑：", "Ambiguous: "), item.ambiguity_reason || "") : null,
      photos.length ? h("div", { class: "gm-photos" }, photos) : null,
      evidence, actionButtons(item));
  }
  async function loadEvidence(number, target) {
    try {
      const detail = await api(`/cases/${number}`);
      target.replaceChildren(...evidenceLines(detail.evidence || {}).map((line) => h("li", {}, line)));
      target.prepend(h("strong", {}, tr("路由依据", "Routing evidence")));
    } catch (error) { target.textContent = error.message; }
  }
  function evidenceLines(evidence) {
    const lines = [];
    if (evidence.unit_grid) lines.push(`${tr("网格", "grid")} ${evidence.unit_grid.code}: ${evidence.unit_grid.how || ""}`);
    const road = (evidence.roads || [])[0];
    if (road) lines.push(`${tr("道路", "road")} ${road.code} (${road.grade}) ${road.distance_m} m`);
    const component = evidence.picked_component || (evidence.components || [])[0];
    if (component) lines.push(`${tr("部件", "component")} ${component.code || component.id} ${component.distance_m ?? ""} m`);
    if (evidence.department) lines.push(`${tr("部门", "department")} ${evidence.department.code} ← ${evidence.department.by}`);
    const others = evidence.other_grids_in_accuracy || [];
    if (others.length) lines.push(tr(`精度圈内另有 ${others.length} 个他属网格`, `${others.length} other bodies' grids within the accuracy`));
    return lines.length ? lines : [tr("无", "none")];
  }
  function actionButtons(item) {
    const actions = item.actions || [];
    if (!actions.length) return null;
    return h("div", { class: "gm-actions" }, actions.map((action) =>
      h("button", { type: "button", class: `gm-act gm-act-${action}`, "data-action": action, "data-number": item.number },
        actionTerm(action))));
  }

  /* ---- the case table ---- */
  function tablePath() {
    const params = filterParams();
    const { sort, descending, page } = state.table;
    params.set("sort", sort); params.set("descending", String(descending));
    params.set("page", String(page)); params.set("size", String(PAGE_SIZE));
    return `/cases?${params}`;
  }
  async function refreshTable() {
    const data = await api(tablePath());
    state.table.total = data.total;
    state.table.items = data.items;
    for (const item of data.items) state.cases.set(item.number, { ...(state.cases.get(item.number) || {}), ...item });
    renderTable();
  }
  function renderTable() {
    const { items, total, page, sort, descending } = state.table;
    const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
    document.querySelector("#case-table tbody").replaceChildren(...items.map((item) =>
      h("tr", { "data-number": item.number, class: `gm-row-${item.status}` },
        h("td", {}, h("a", { href: "#", class: "gm-locate", "data-number": item.number }, item.number)),
        h("td", {}, className(item)), h("td", { class: "gm-status", title: statusTerm(item.status) },
          lang === "en" ? item.status : statusTerm(item.status)),
        h("td", {}, h("i", { class: "gm-dot", style: `background:${lightColour(item)}`,
                             title: pair(LIGHT_TERMS[lightKey(item)]) })),
        item.department ? h("td", { title: department(item.department) }, item.department)
          : h("td", { class: "gm-proposed", title: `${tr("建议", "proposed")} ${department(item.proposed_department)}` },
              item.proposed_department || "–"),
        h("td", {}, when(item.reported_at)), h("td", {}, when(item.stage_deadline)),
        h("td", {}, actionButtons(item)))));
    if (!items.length) {
      document.querySelector("#case-table tbody").append(h("tr", {}, h("td", { colspan: 8, class: "gm-muted" },
        tr("没有符合条件的案件", "no case matches the filters"))));
    }
    $("table-total").textContent = tr(`共 ${total} 件`, `${total} in all`);
    $("page-info").textContent = tr(`第 ${page} / ${pages} 页`, `page ${page} of ${pages}`);
    $("page-prev").disabled = page <= 1;
    $("page-next").disabled = page >= pages;
    for (const th of document.querySelectorAll("#case-table th[data-sort]")) {
      th.setAttribute("aria-sort", th.dataset.sort === sort ? (descending ? "descending" : "ascending") : "none");
    }
  }
  function bindTable() {
    document.querySelector("#case-table thead").addEventListener("click", (event) => {
      const th = event.target.closest("th[data-sort]");
      if (!th) return;
      const table = state.table;
      table.descending = table.sort === th.dataset.sort ? !table.descending : true;
      table.sort = th.dataset.sort;
      table.page = 1;
      refreshTable().catch(report);
    });
    $("page-prev").addEventListener("click", () => { state.table.page -= 1; refreshTable().catch(report); });
    $("page-next").addEventListener("click", () => { state.table.page += 1; refreshTable().catch(report); });
  }
  function locate(number) {
    const marker = state.markers.get(number);
    const item = state.cases.get(number);
    if (marker) {
      state.map.setView(marker.getLatLng(), Math.max(state.map.getZoom(), 16));
      marker.openPopup();
    } else if (item) {
      state.map.setView([item.lat, item.lon], Math.max(state.map.getZoom(), 16));
      L.popup({ maxWidth: 380, minWidth: 280 }).setLatLng([item.lat, item.lon]).setContent(casePopup(number)).openOn(state.map);
    }
  }

  /* ---- actions ---- */
  function field(label, control) { return h("label", {}, h("span", {}, label), control); }
  function actionFields(action, item) {
    const fields = [];
    if (action === "dispatch") {
      fields.push(field(tr("派往部门", "Department"), h("select", { name: "department" }, state.config.departments.map((d) =>
        h("option", { value: d.code, selected: d.code === item.proposed_department },
          `${d.code} ${tr(d.name, d.name_en || d.name)}${d.code === item.proposed_department ? tr("（建议）", " (proposed)") : ""}`)))));
      if (item.ambiguous) fields.push(checkbox("confirm", tr(`已核对存疑的派遣：${item.ambiguity_reason || ""}`, `Checked the ambiguous routing: ${item.ambiguity_reason || ""}`)));
    }
    if (action === "file") {
      const cls = classOf(item);
      if (cls && cls.filing_condition) fields.push(checkbox("confirm", tr(`符合立案条件：${cls.filing_condition}`, `The filing condition is met: ${cls.filing_condition}`)));
    }
    if (action === "request_extension") {
      fields.push(field(tr("延长", "Extension"), h("input", { name: "extension", type: "number", min: "0.5", step: "0.5", value: "4", required: true })));
      fields.push(field(tr("单位", "Unit"), h("select", { name: "extension_unit" }, h("option", { value: "hour" }, tr("工作小时", "working hours")),
                                                     h("option", { value: "day" }, tr("工作日", "working days")))));
    }
    if (action === "check") {
      fields.push(field(tr("核查结果", "Result"), h("select", { name: "passed" }, h("option", { value: "true" }, tr("已解决", "solved")),
                                                      h("option", { value: "false" }, tr("未解决（返工）", "not solved (rework)")))));
    }
    if (action === "close") {
      fields.push(field(tr("结案方式", "Kind"), h("select", { name: "close_kind" }, Object.entries(CLOSE_KINDS).map(([value, terms]) =>
        h("option", { value }, pair(terms))))));
    }
    if (action === "merge") fields.push(field(tr("并入案件编号", "Merge into case"), h("input", { name: "into", required: true, pattern: "\\d{14}" })));
    const needsReason = state.config.needs_reason.includes(action);
    fields.push(field(needsReason ? tr("原因（必填）", "Reason (required)") : tr("备注", "Note"),
                      h("textarea", { name: needsReason ? "reason" : "note", rows: 2, required: needsReason, maxlength: 2000 })));
    if (action === "dispatch") fields.push(h("p", { class: "gm-muted" }, tr("改派其他部门须填写原因。", "Dispatching elsewhere needs a reason.")));
    return fields;
  }
  function checkbox(name, label) {
    return h("label", { class: "gm-check" }, h("input", { type: "checkbox", name }), h("span", {}, label));
  }
  function openAction(number, action) {
    const item = state.cases.get(number);
    if (!item) return;
    state.dialog = { number, action };
    $("ad-title").textContent = `${actionTerm(action)} · ${number}`;
    $("ad-case").textContent = `${className(item)} · ${statusTerm(item.status)} · ${department(item.department)}`;
    $("ad-fields").replaceChildren(...actionFields(action, item));
    $("ad-error").textContent = "";
    $("ad-ok").disabled = false;
    $("action-dialog").showModal();
  }
  function actionBody(form, item) {
    const body = { version: item.version };
    for (const control of form.elements) {
      if (!control.name || control.value === "") continue;
      if (control.type === "checkbox") body[control.name] = control.checked;
      else if (control.name === "passed") body.passed = control.value === "true";
      else if (control.name === "extension") body.extension = Number(control.value);
      else body[control.name] = control.value;
    }
    return body;
  }
  async function submitAction(event) {
    event.preventDefault();
    if (event.submitter && event.submitter.id === "ad-cancel") { $("action-dialog").close(); return; }
    const { number, action } = state.dialog;
    const item = state.cases.get(number);
    const body = actionBody(event.target, item);
    if (action === "dispatch" && body.department !== item.proposed_department && !body.note) {
      $("ad-error").textContent = tr("改派其他部门须填写原因", "Dispatching elsewhere needs a reason");
      return;
    }
    if (action === "dispatch" && body.note) { body.reason = body.note; delete body.note; }
    $("ad-ok").disabled = true;
    try {
      const updated = await api(`/cases/${number}/${action}`, { method: "POST", json: body });
      state.cases.set(number, { ...item, ...updated });
      placeMarker(state.cases.get(number), true);
      $("action-dialog").close();
      state.map.closePopup();
      flash(tr(`${number}：${actionTerm(action)}完成，现为「${statusTerm(updated.status)}」`,
               `${number}: ${actionTerm(action)} done, now ${statusTerm(updated.status)}`));
      await refreshAll();
    } catch (error) {
      $("ad-error").textContent = error.message;
      $("ad-ok").disabled = false;
    }
  }
  function bindActions() {
    document.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      if (button) { event.preventDefault(); openAction(button.dataset.number, button.dataset.action); return; }
      const link = event.target.closest("a.gm-locate");
      if (link) { event.preventDefault(); locate(link.dataset.number); }
    });
    $("action-form").addEventListener("submit", submitAction);
    $("ad-cancel").addEventListener("click", () => $("action-dialog").close());
  }
  function flash(message) {
    const live = $("live");
    live.textContent = message;
    live.classList.add("gm-flash");
    setTimeout(() => live.classList.remove("gm-flash"), 4000);
  }

  /* ---- headline and grid figures ---- */
  async function refreshHeadline() {
    state.headline = await api("/stats/headline");
    renderHeadline();
  }
  function renderHeadline() {
    const figures = state.headline;
    if (!figures) return;
    for (const key of ["reports_today", "filed_today", "dispatched_today", "open", "overdue"]) {
      $({ reports_today: "h-reports", filed_today: "h-filed", dispatched_today: "h-dispatched", open: "h-open",
          overdue: "h-overdue" }[key]).textContent = String(figures[key]);
    }
    const rate = figures.on_time_disposal_rate;
    $("h-rate").textContent = rate === null || rate === undefined ? "–" : `${(rate * 100).toFixed(1)}%`;
    $("h-late").replaceChildren(...figures.overdue_by_department.slice(0, 5).map((row) =>
      h("li", { title: row.name || "" }, `${row.department || "–"} ${row.overdue}`)));
  }
  const byGrid = (rows) => Object.fromEntries(rows.map((row) => [row.unit_grid, row.value]));
  function gridPaths() {
    const period = new URLSearchParams({ metric: "cases" });
    if ($("f-from").value) period.set("date_from", $("f-from").value);
    if ($("f-to").value) period.set("date_to", $("f-to").value);
    const paths = ["/stats/grids?metric=open", "/stats/grids?metric=overdue"];
    return $("f-metric").value === "cases" ? [...paths, `/stats/grids?${period}`] : paths;
  }
  async function refreshGrids() {
    const metric = $("f-metric").value;
    const [open, overdue, cases] = await Promise.all(gridPaths().map((path) => api(path)));
    state.gridOpen = byGrid(open);
    state.gridOverdue = byGrid(overdue);
    restyleGrids(metric === "open" ? state.gridOpen : metric === "overdue" ? state.gridOverdue : byGrid(cases));
  }
  function restyleGrids(values) {
    const before = state.gridValues;
    state.gridValues = values;
    const grids = state.layers.unit_grid;
    const style = grids.options.vectorTileLayerStyles.unit_grid;
    for (const code of new Set([...Object.keys(before), ...Object.keys(values)])) {
      if (before[code] !== values[code]) grids.setFeatureStyle(code, style);
    }
  }

  /* ---- start, refresh, live ---- */
  function report(error) {
    if (error && error.status === 401) return;
    flash(error.message || String(error));
  }
  async function refreshAll() {
    await Promise.all([refreshCases(), refreshTable(), refreshHeadline(), refreshGrids()]).catch(report);
    markUpdated();
  }
  function markUpdated() {
    state.lastUpdate = new Date();
    const live = $("live");
    if (!live.classList.contains("gm-flash")) live.textContent = `${tr("实时", "live")} ${when(state.lastUpdate)}`;
  }
  async function poll(slow) {
    if (state.busy || !state.token || document.hidden) return;
    state.busy = true;
    try {
      await Promise.all(slow ? [refreshHeadline(), refreshGrids()] : [refreshCases(), refreshTable()]);
      markUpdated();
    } catch (error) { report(error); } finally { state.busy = false; }
  }
  function checkReady() {
    if (state.ready.cases && state.ready.grids && !window.gridmapReady) {
      window.gridmapReady = true;
      state.timings.ready = performance.now();
      document.documentElement.dataset.ready = "true";
    }
  }
  function watchGrids() {
    const grids = state.layers.unit_grid;
    const visible = grids && state.map.hasLayer(grids) && state.map.getZoom() >= (grids.options.minZoom || 0);
    if (!visible) { state.ready.grids = true; checkReady(); return; }
    grids.once("load", () => { state.ready.grids = true; state.timings.grids = performance.now(); checkReady(); });
  }
  function showUser() {
    const user = state.user || {};
    $("who").textContent = `${user.name || ""} · ${pair(ROLES[user.role]) || user.role || ""}`;
  }
  async function begin() {
    $("login").hidden = true;
    api("/users/me").then((user) => {
      state.user = user;
      sessionStorage.setItem(STORE.user, JSON.stringify(user));
      showUser();
    }, report);
    showUser();
    if (state.started) { refreshAll(); return; }
    state.started = true;
    await refreshAll();
    setInterval(() => poll(false), POLL_MS);
    setInterval(() => poll(true), SLOW_POLL_MS);
  }
  function start(layers) {
    state.layers = layers;
    tuneHeat();
    state.map.on("zoomend", tuneHeat);
    applyLanguage();
    watchGrids();
    bindFilters();
    bindTable();
    bindActions();
    bindLogin(begin);
    $("lang").addEventListener("click", switchLanguage);
    $("logout").addEventListener("click", logOut);
    if (state.token) begin(); else showLogin();
  }
  function startLogin() {
    document.addEventListener("DOMContentLoaded", () => {
      applyLanguage();
      $("lang").addEventListener("click", switchLanguage);
      bindLogin(() => window.location.reload());
    });
  }
  function counts() {
    const result = {};
    for (const [key, layer] of Object.entries(state.layers)) {
      if (layer._vectorTiles) {
        result[key] = Object.values(layer._vectorTiles).filter((r) => r._map)
          .reduce((sum, renderer) => sum + Object.keys(renderer._layers).length, 0);
      } else if (layer.setLatLngs) result[key] = (layer._latlngs || []).length;
      else result[key] = layer.getLayers().length;
    }
    return result;
  }

  return { configure, boundaryLayer, vectorOptions, caseLayer, start, startLogin, counts, state, featuresAt };
})();
