// memdx HTML report: draws the timelines, sparklines and flame graphs from the JSON blob in
// the element #memdx-data. Vanilla script, no library, nothing fetched (the page's CSP forbids
// it). SVG is built as markup and inserted with innerHTML: the HTML parser puts <svg> in the SVG
// namespace itself, so the page names no namespace URL.
(function () {
  'use strict';

  const data = JSON.parse(document.getElementById('memdx-data').textContent);
  const meta = data.meta || {};

  // Series of the three charts of a process, in legend order.
  const BYTE_SERIES = [
    ['rss_bytes', 'RSS', '#0969da'],
    ['pss_bytes', 'PSS', '#8250df'],
    ['rss_anon_bytes', 'anon', '#cf222e'],
    ['rss_file_bytes', 'file', '#1a7f37'],
    ['rss_shmem_bytes', 'shmem', '#bf8700'],
    ['swap_bytes', 'swap', '#6e7781'],
    ['heap_live_bytes', 'live heap', '#fb8500'],
    ['gpu_bytes', 'GPU', '#0a7d6e'],
  ];
  const VSZ_SERIES = [['vsz_bytes', 'VSZ', '#57606a']];
  const COUNT_SERIES = [
    ['fds', 'fds', '#0969da'],
    ['threads', 'threads', '#cf222e'],
  ];

  // ---- formatting -------------------------------------------------------------------------

  function esc(text) {
    return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
  }

  const BYTE_UNITS = [['B', 1], ['KiB', 1024], ['MiB', 1024 ** 2], ['GiB', 1024 ** 3], ['TiB', 1024 ** 4], ['PiB', 1024 ** 5]];

  function byteUnit(value) {
    let unit = BYTE_UNITS[0];
    for (const u of BYTE_UNITS) if (Math.abs(value) >= u[1]) unit = u;
    return unit;
  }

  // Three significant digits, as memdx's text output: "1.50 GiB", "640 KiB".
  function formatBytes(value) {
    if (value === null || value === undefined) return '\u2013';
    if (Math.abs(value) < 1000) return Math.round(value) + ' B';
    let v = value;
    let i = 0;
    while (i + 1 < BYTE_UNITS.length && Math.abs(v) >= 999.5) { v /= 1024; i++; }
    const digits = Math.abs(v) < 9.995 ? 2 : Math.abs(v) < 99.95 ? 1 : 0;
    return v.toFixed(digits) + ' ' + BYTE_UNITS[i][0];
  }

  function formatCount(value) {
    if (value === null || value === undefined) return '\u2013';
    return Math.round(value).toLocaleString('en-US');
  }

  function formatTime(ms) {
    const s = ms / 1000;
    if (Math.abs(s) < 120) return (Math.abs(s) < 10 ? s.toFixed(1) : s.toFixed(0)) + ' s';
    if (Math.abs(s) < 7200) return (s / 60).toFixed(1) + ' min';
    return (s / 3600).toFixed(2) + ' h';
  }

  function trimZeros(text) {
    return text.indexOf('.') < 0 ? text : text.replace(/\.?0+$/, '');
  }

  // ---- axes ---------------------------------------------------------------------------------

  function niceStep(raw) {
    if (!(raw > 0)) return 1;
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / power;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * power;
  }

  // Ticks from 0 past maxValue, in one binary unit for bytes ("0, 20 MiB, 40 MiB").
  function valueTicks(maxValue, unit) {
    const top = maxValue > 0 ? maxValue : 1;
    let scale = 1;
    let name = '';
    if (unit === 'bytes') {
      const u = byteUnit(top);
      scale = u[1];
      name = ' ' + u[0];
    }
    let step = niceStep(top / scale / 4) * scale;
    if (unit !== 'bytes' || scale === 1) step = Math.max(step, 1);
    const ticks = [];
    for (let v = 0; v < top + step * 0.999 && ticks.length < 12; v += step) ticks.push(v);
    const labels = ticks.map((v) => trimZeros((v / scale).toFixed(2)) + name);
    return { ticks: ticks, labels: labels, top: ticks[ticks.length - 1] };
  }

  const TIME_STEPS_S = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

  function timeTicks(spanMs) {
    const spanS = Math.max(spanMs / 1000, 0.1);
    const stepS = TIME_STEPS_S.find((s) => spanS / s <= 7) || 86400;
    const ticks = [];
    for (let s = 0; s <= spanS + 1e-9 && ticks.length < 20; s += stepS) ticks.push(s * 1000);
    const label = (ms) => {
      const s = ms / 1000;
      if (stepS < 60) return trimZeros(s.toFixed(1)) + ' s';
      if (stepS < 3600) return trimZeros((s / 60).toFixed(1)) + ' min';
      return trimZeros((s / 3600).toFixed(1)) + ' h';
    };
    return { ticks: ticks, labels: ticks.map(label) };
  }

  // ---- line charts --------------------------------------------------------------------------

  const CHART_H = 190;
  const MARGIN = { left: 64, right: 12, top: 14, bottom: 24 };

  // Bucket i is centred on this instant (html_data.h: BucketGrid).
  function bucketTime(timeline, i) {
    return timeline.t0_ms + i * timeline.step_ms;
  }

  function seriesMax(series) {
    let m = 0;
    for (const v of series.max) if (v !== null && v > m) m = v;
    return m;
  }

  // A path through each bucket's minimum then maximum: a bucket holding a spike draws a vertical
  // stroke up to it, so spikes survive downsampling on screen as well.
  function seriesPath(timeline, series, x, y) {
    const max = series.max;
    const min = series.min || series.max;
    const parts = [];
    for (let i = 0; i < max.length; i++) {
      if (max[i] === null) continue;
      const px = x(bucketTime(timeline, i)).toFixed(1);
      const lo = y(min[i]).toFixed(1);
      const hi = y(max[i]).toFixed(1);
      parts.push((parts.length ? 'L' : 'M') + px + ',' + lo);
      if (hi !== lo) parts.push('L' + px + ',' + hi);
    }
    // A single point still shows: a short horizontal tick.
    if (parts.length === 1) parts.push('h2');
    return parts.join('');
  }

  function exitLabel(process) {
    if (process.exit_signal !== null && process.exit_signal !== undefined) return 'killed by signal ' + process.exit_signal;
    if (process.exit_code !== null && process.exit_code !== undefined) return 'exit ' + process.exit_code;
    return 'exit';
  }

  function chartSvg(spec, width) {
    const timeline = spec.timeline;
    const shown = spec.series.filter((s) => timeline.series[s[0]]);
    const plotW = width - MARGIN.left - MARGIN.right;
    const plotH = CHART_H - MARGIN.top - MARGIN.bottom;
    const spanMs = Math.max(meta.duration_ms || 0, bucketTime(timeline, timeline.series[shown[0][0]].max.length - 1), 1);
    const maxValue = Math.max.apply(null, shown.map((s) => seriesMax(timeline.series[s[0]])));
    const yAxis = valueTicks(maxValue, spec.unit);
    const xAxis = timeTicks(spanMs);
    const x = (ms) => MARGIN.left + (ms / spanMs) * plotW;
    const y = (v) => MARGIN.top + plotH - (v / yAxis.top) * plotH;
    const out = ['<svg viewBox="0 0 ' + width + ' ' + CHART_H + '" role="img" aria-label="' + esc(spec.title) + '">'];
    out.push('<g class="grid">');
    yAxis.ticks.forEach((v) => out.push('<line x1="' + MARGIN.left + '" x2="' + (MARGIN.left + plotW) + '" y1="' + y(v).toFixed(1) + '" y2="' + y(v).toFixed(1) + '"/>'));
    out.push('</g><g class="axis">');
    yAxis.ticks.forEach((v, i) => out.push('<text x="' + (MARGIN.left - 6) + '" y="' + (y(v) + 3).toFixed(1) + '" text-anchor="end">' + esc(yAxis.labels[i]) + '</text>'));
    xAxis.ticks.forEach((ms, i) => out.push('<text x="' + x(ms).toFixed(1) + '" y="' + (CHART_H - 6) + '" text-anchor="middle">' + esc(xAxis.labels[i]) + '</text>'));
    out.push('<path d="M' + MARGIN.left + ',' + MARGIN.top + 'V' + (MARGIN.top + plotH) + 'H' + (MARGIN.left + plotW) + '" fill="none"/>');
    out.push('</g>');
    const process = spec.process;
    if (process.exited_ms !== null && process.exited_ms !== undefined) {
      const ex = x(process.exited_ms).toFixed(1);
      out.push('<line class="exit-line" x1="' + ex + '" x2="' + ex + '" y1="' + MARGIN.top + '" y2="' + (MARGIN.top + plotH) + '"/>');
      out.push('<text class="exit-label" x="' + (Number(ex) - 4) + '" y="' + (MARGIN.top + 8) + '" text-anchor="end">' + esc(exitLabel(process)) + '</text>');
    }
    shown.forEach((s) => {
      out.push('<path class="series" data-series="' + s[0] + '" fill="none" stroke="' + s[2] + '" stroke-width="1.6" stroke-linejoin="round" d="' +
               seriesPath(timeline, timeline.series[s[0]], x, y) + '"/>');
    });
    out.push('<line class="hover-line" x1="0" x2="0" y1="' + MARGIN.top + '" y2="' + (MARGIN.top + plotH) + '" visibility="hidden"/>');
    out.push('<rect class="hover" x="' + MARGIN.left + '" y="' + MARGIN.top + '" width="' + plotW + '" height="' + plotH + '" fill="transparent"/>');
    out.push('</svg>');
    return { markup: out.join(''), shown: shown, x: x, spanMs: spanMs, plotW: plotW, width: width };
  }

  function legendHtml(timeline, shown, unit) {
    const format = unit === 'bytes' ? formatBytes : formatCount;
    return '<div class="legend">' + shown.map((s) => '<span><i style="background:' + s[2] + '"></i>' + esc(s[1]) +
      ' <b>' + esc(format(seriesMax(timeline.series[s[0]]))) + '</b> peak</span>').join('') + '</div>';
  }

  function tooltipText(timeline, shown, unit, i) {
    const format = unit === 'bytes' ? formatBytes : formatCount;
    const rows = ['<b>' + esc(formatTime(bucketTime(timeline, i))) + '</b>'];
    shown.forEach((s) => {
      const series = timeline.series[s[0]];
      const hi = series.max[i];
      if (hi === null || hi === undefined) return;
      const lo = (series.min || series.max)[i];
      const value = lo !== hi ? format(lo) + ' \u2013 ' + format(hi) : format(hi);
      rows.push('<span style="color:' + s[2] + '">\u25a0</span> ' + esc(s[1]) + ': ' + esc(value));
    });
    return rows.join('<br>');
  }

  function attachHover(chart, drawn, spec) {
    const svg = chart.querySelector('svg');
    const hover = svg.querySelector('rect.hover');
    const line = svg.querySelector('.hover-line');
    const tip = chart.querySelector('.tooltip');
    const timeline = spec.timeline;
    hover.addEventListener('mousemove', (event) => {
      const box = svg.getBoundingClientRect();
      const vx = ((event.clientX - box.left) / box.width) * drawn.width;
      const ms = ((vx - MARGIN.left) / drawn.plotW) * drawn.spanMs;
      const count = timeline.series[drawn.shown[0][0]].max.length;
      const i = Math.min(Math.max(Math.round((ms - timeline.t0_ms) / timeline.step_ms), 0), count - 1);
      const lx = drawn.x(bucketTime(timeline, i)).toFixed(1);
      line.setAttribute('x1', lx);
      line.setAttribute('x2', lx);
      line.setAttribute('visibility', 'visible');
      tip.innerHTML = tooltipText(timeline, drawn.shown, spec.unit, i);
      tip.style.display = 'block';
      const px = event.clientX - chart.getBoundingClientRect().left;
      tip.style.left = (px > chart.clientWidth / 2 ? px - tip.offsetWidth - 12 : px + 12) + 'px';
      tip.style.top = '28px';
    });
    hover.addEventListener('mouseleave', () => {
      line.setAttribute('visibility', 'hidden');
      tip.style.display = 'none';
    });
  }

  function drawChart(container, spec, width) {
    if (!spec.series.some((s) => spec.timeline.series[s[0]])) return;
    const chart = document.createElement('div');
    chart.className = 'chart';
    const drawn = chartSvg(spec, width);
    chart.innerHTML = '<div class="chart-title">' + esc(spec.title) + '</div>' +
      legendHtml(spec.timeline, drawn.shown, spec.unit) + drawn.markup + '<div class="tooltip"></div>';
    container.appendChild(chart);
    attachHover(chart, drawn, spec);
  }

  function peakOf(process) {
    if (process.peak_pss_bytes) return process.peak_pss_bytes;
    if (process.peak_rss_bytes) return process.peak_rss_bytes;
    const rss = process.timeline && process.timeline.series.rss_bytes;
    return rss ? seriesMax(rss) : 0;
  }

  function drawTimelines() {
    const root = document.getElementById('timeline-charts');
    if (!root) return;
    const processes = (data.processes || []).filter((p) => p.timeline);
    processes.sort((a, b) => (b.pid === meta.root_pid) - (a.pid === meta.root_pid) || peakOf(b) - peakOf(a) || a.pid - b.pid);
    if (!processes.length) {
      root.innerHTML = '<p class="empty">No samples were recorded.</p>';
      return;
    }
    processes.forEach((p) => {
      const box = document.createElement('div');
      box.className = 'proc';
      box.id = 'proc-' + p.pid;
      const exit = p.exited_ms !== null && p.exited_ms !== undefined ? exitLabel(p) + ' at ' + formatTime(p.exited_ms) : 'still running at the end';
      box.innerHTML = '<h3>pid ' + p.pid + ' <code>' + esc(p.command.length > 100 ? p.command.slice(0, 97) + '...' : p.command) +
        '</code><span class="exit">' + esc(exit) + '</span></h3><div class="charts"></div>';
      const charts = box.querySelector('.charts');
      drawChart(charts, { title: 'Memory', unit: 'bytes', series: BYTE_SERIES, timeline: p.timeline, process: p }, 640);
      drawChart(charts, { title: 'Virtual size', unit: 'bytes', series: VSZ_SERIES, timeline: p.timeline, process: p }, 320);
      drawChart(charts, { title: 'Open fds and threads', unit: 'count', series: COUNT_SERIES, timeline: p.timeline, process: p }, 320);
      root.appendChild(box);
    });
  }

  // ---- sparklines ---------------------------------------------------------------------------

  function drawSparklines() {
    const byPid = new Map((data.processes || []).map((p) => [String(p.pid), p]));
    document.querySelectorAll('.spark[data-pid]').forEach((cell) => {
      const p = byPid.get(cell.getAttribute('data-pid'));
      const values = p && p.spark ? p.spark.rss_bytes : null;
      if (!values || !values.length) {
        cell.textContent = '\u2013';
        return;
      }
      const w = 120;
      const h = 20;
      let top = 1;
      for (const v of values) if (v !== null && v > top) top = v;
      const points = [];
      values.forEach((v, i) => {
        if (v === null) return;
        const px = values.length > 1 ? (i / (values.length - 1)) * (w - 2) + 1 : w / 2;
        points.push(px.toFixed(1) + ',' + (h - 1 - (v / top) * (h - 2)).toFixed(1));
      });
      if (points.length === 1) points.push((Number(points[0].split(',')[0]) + 2) + ',' + points[0].split(',')[1]);
      cell.innerHTML = '<svg width="' + w + '" height="' + h + '" viewBox="0 0 ' + w + ' ' + h + '"><title>peak RSS ' + esc(formatBytes(top)) +
        '</title><polyline fill="none" stroke="#0969da" stroke-width="1.2" points="' + points.join(' ') + '"/></svg>';
    });
  }

  // ---- flame graphs -------------------------------------------------------------------------

  const FLAME_W = 1200;
  const FLAME_ROW = 18;

  function hue(name) {
    let h = 0;
    for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
    return h;
  }

  function frameColor(name) {
    const h = hue(name);
    return 'hsl(' + (8 + (h % 42)) + ',' + (70 + ((h >> 8) % 20)) + '%,' + (60 + ((h >> 16) % 12)) + '%)';
  }

  function linkParents(node, parent) {
    node.parent = parent;
    (node.c || []).forEach((child) => linkParents(child, node));
  }

  function depthOf(node) {
    let d = 0;
    (node.c || []).forEach((child) => { d = Math.max(d, depthOf(child)); });
    return d + 1;
  }

  function flameFrame(node, x, w, row, total) {
    const pct = total > 0 ? ((node.v / total) * 100).toFixed(node.v / total < 0.001 ? 3 : 1) : '0';
    const title = node.n + '\n' + formatBytes(node.v) + ' (' + pct + '%)';
    const chars = Math.floor((w - 6) / 6.6);
    const label = chars >= 3 ? (node.n.length > chars ? node.n.slice(0, chars - 1) + '\u2026' : node.n) : '';
    const y = row * FLAME_ROW;
    return '<g data-frame="1"><title>' + esc(title) + '</title><rect x="' + x.toFixed(2) + '" y="' + y + '" width="' + w.toFixed(2) +
      '" height="' + (FLAME_ROW - 1) + '" rx="2" fill="' + (node.parent ? frameColor(node.n) : '#d0d7de') + '"/>' +
      (label ? '<text x="' + (x + 4).toFixed(1) + '" y="' + (y + 12.5) + '">' + esc(label) + '</text>' : '') + '</g>';
  }

  // Draws `focus` across the whole width, its ancestors as full-width bars above it.
  function drawFlame(el, root, focus) {
    const chain = [];
    for (let n = focus; n; n = n.parent) chain.unshift(n);
    const rows = chain.length - 1 + depthOf(focus);
    const parts = [];
    const nodes = [];
    chain.slice(0, -1).forEach((n, row) => {
      nodes.push(n);
      parts.push(flameFrame(n, 0, FLAME_W, row, root.v));
    });
    const scale = focus.v > 0 ? FLAME_W / focus.v : 0;
    (function layout(node, x, row) {
      const w = node.v * scale;
      if (w < 0.4) return;
      nodes.push(node);
      parts.push(flameFrame(node, x, w, row, root.v));
      let cx = x;
      (node.c || []).forEach((child) => {
        layout(child, cx, row + 1);
        cx += child.v * scale;
      });
    })(focus, 0, chain.length - 1);
    el.innerHTML = '<svg viewBox="0 0 ' + FLAME_W + ' ' + rows * FLAME_ROW + '" role="img">' + parts.join('') + '</svg>';
    el.querySelectorAll('g[data-frame]').forEach((g, i) => {
      g.addEventListener('click', () => drawFlame(el, root, nodes[i] === focus ? (focus.parent || root) : nodes[i]));
    });
  }

  function drawFlames() {
    if (!data.flame) return;
    [['flame-peak', data.flame.peak], ['flame-growth', data.flame.growth]].forEach(([id, flame]) => {
      const el = document.getElementById(id);
      if (!el || !flame) return;
      if (!flame.root || !(flame.root.v > 0)) {
        el.innerHTML = '<p class="empty">Nothing to draw: no stack holds bytes by this measure.</p>';
        return;
      }
      linkParents(flame.root, null);
      drawFlame(el, flame.root, flame.root);
    });
  }

  drawTimelines();
  drawSparklines();
  drawFlames();
})();
