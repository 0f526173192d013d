/* pgscope report: renders the embedded profile document (format "pgscope-profile"
 * version 1): metadata, an interactive flame graph of the call graph, the top
 * functions by self time and a per-line table for each of them.  No network,
 * no libraries. */
(function () {
  'use strict';
  var doc = JSON.parse(document.getElementById('pgscope-data').textContent);
  var TOP = parseInt(document.body.getAttribute('data-top'), 10) || 20;

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function fmtTime(ns) {
    ns = Number(ns) || 0;
    if (ns >= 1e9) return (ns / 1e9).toFixed(3) + ' s';
    if (ns >= 1e6) return (ns / 1e6).toFixed(3) + ' ms';
    if (ns >= 1e3) return (ns / 1e3).toFixed(1) + ' \u00b5s';
    return ns + ' ns';
  }
  function fmtPct(part, whole) { return whole > 0 ? (100 * part / whole).toFixed(1) + '%' : '-'; }
  function fmtInt(n) { return Number(n || 0).toLocaleString('en-US'); }
  function slug(id) { return 'fn-' + String(id).replace(/[^0-9a-z-]/gi, '_'); }

  /* ---------------- metadata ---------------- */
  var meta = doc.meta || {};
  var metaBox = document.getElementById('meta');
  [['database', meta.database], ['server', meta.server_version], ['scope', meta.scope],
   ['collected', meta.collected_at], ['command', meta.command], ['dataset', doc.dataset && doc.dataset.name]]
    .forEach(function (kv) {
      if (kv[1] === undefined || kv[1] === null || kv[1] === '') return;
      var v = String(kv[1]);
      var s = el('span', v.length > 160 ? { 'class': 'long', title: v } : null);
      s.appendChild(el('b', null, kv[0] + ': ')); s.appendChild(document.createTextNode(v));
      metaBox.appendChild(s);
    });
  var overflow = ['functions', 'statements', 'callgraph', 'source'].filter(function (k) { return meta[k + '_overflow']; });
  if (overflow.length)
    metaBox.appendChild(el('span', { 'class': 'warn', id: 'overflow' },
      'shared tables overflowed (' + overflow.join(', ') + '): some data is missing'));
  if (meta.parallel_worker_calls)
    metaBox.appendChild(el('span', { 'class': 'warn', id: 'parallel' },
      meta.parallel_worker_calls + ' PL/pgSQL calls ran in parallel workers and are not in this session profile'));

  /* ---------------- flame graph ---------------- */
  function Node(name, parent) {
    this.name = name; this.parent = parent; this.children = []; this.byName = {};
    this.self = 0; this.calls = 0; this.total = 0; this.value = 0;
  }
  /* a CPU profile's stacks say what each frame is (kinds: q query or process, p PL/pgSQL line,
     w wait or [CPU], n native): they can be grouped without the outer levels */
  var KEEP = { all: 'qpwn', line: 'pwn', native: 'n' };
  function build(group) {
    var r = new Node('all', null);
    (doc.callgraph || []).forEach(function (cg) {
      var n = r;
      cg.stack.forEach(function (name, i) {
        if (cg.kinds && KEEP[group].indexOf(cg.kinds.charAt(i)) < 0) return;
        var c = n.byName[name];
        if (!c) { c = new Node(name, n); n.byName[name] = c; n.children.push(c); }
        n = c;
      });
      n.self += Number(cg.self_ns); n.calls += Number(cg.calls); n.total += Number(cg.total_ns);
    });
    (function sum(n) {
      n.value = n.self;
      n.children.forEach(function (c) { n.value += sum(c); });
      n.children.sort(function (a, b) { return a.name < b.name ? -1 : a.name > b.name ? 1 : 0; });
      return n.value;
    })(r);
    r.total = r.value;
    return r;
  }
  var root = build('all');
  var grand = root.value;

  var flame = document.getElementById('flame');
  var tip = document.getElementById('tooltip');
  var ROW = 21;
  var zoomed = root;
  var searchRe = null;

  function colour(name) {
    var h = 0;
    for (var i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
    return 'hsl(' + (18 + h % 38) + ',' + (70 + h % 20) + '%,' + (58 + h % 12) + '%)';
  }

  function render() {
    flame.innerHTML = '';
    var maxDepth = 0, frames = [], matched = 0;
    /* ancestors of the zoomed node span the full width, greyed */
    var chain = [];
    for (var a = zoomed; a; a = a.parent) chain.unshift(a);
    chain.forEach(function (n, d) { frames.push({ n: n, x: 0, w: 1, d: d, ancestor: n !== zoomed }); });
    var base = chain.length - 1;
    (function lay(n, x, d) {
      var w = zoomed.value > 0 ? n.value / zoomed.value : 0;
      if (n !== zoomed) frames.push({ n: n, x: x, w: w, d: d });
      maxDepth = Math.max(maxDepth, d);
      var cx = x;
      n.children.forEach(function (c) {
        lay(c, cx, d + 1);
        cx += zoomed.value > 0 ? c.value / zoomed.value : 0;
      });
    })(zoomed, 0, base);
    flame.style.height = ((maxDepth + 1) * ROW + 2) + 'px';
    frames.forEach(function (f) {
      if (f.w <= 0.0005 && f.n !== root) return;
      var div = el('div', { 'class': 'frame', role: 'treeitem', 'data-name': f.n.name }, f.n.name);
      if (f.n === root) div.className += ' root';
      if (f.ancestor) div.className += ' ancestor';
      div.style.left = (100 * f.x) + '%';
      div.style.width = (100 * f.w) + '%';
      div.style.top = (f.d * ROW) + 'px';
      div.style.background = colour(f.n.name);
      if (searchRe && f.n !== root && searchRe.test(f.n.name)) { div.className += ' match'; matched++; }
      div.addEventListener('click', function (ev) { ev.stopPropagation(); zoom(f.n); });
      div.addEventListener('mousemove', function (ev) { showTip(ev, f.n); });
      div.addEventListener('mouseleave', function () { tip.style.display = 'none'; });
      flame.appendChild(div);
    });
    flame.setAttribute('data-zoom', zoomed.name);
    var res = document.getElementById('search-result');
    if (searchRe) {
      var pct = 0;
      (function acc(n, inside) {
        var hit = n !== root && searchRe.test(n.name);
        if (hit && !inside) pct += n.value;
        n.children.forEach(function (c) { acc(c, inside || hit); });
      })(root, false);
      res.textContent = matched + ' frames match, ' + fmtPct(pct, grand) + ' of all time';
    } else res.textContent = '';
  }
  function zoom(n) { zoomed = n; tip.style.display = 'none'; render(); }
  function showTip(ev, n) {
    tip.innerHTML = '';
    tip.appendChild(el('div', { 'class': 'name' }, n.name));
    var lines = n === root ? ['total ' + fmtTime(grand)] :
      ['calls ' + fmtInt(n.calls), 'total ' + fmtTime(n.total), 'self ' + fmtTime(n.self),
       'subtree ' + fmtTime(n.value) + ' = ' + fmtPct(n.value, grand) + ' of all'];
    lines.forEach(function (t) { tip.appendChild(el('div', null, t)); });
    tip.style.display = 'block';
    var x = Math.min(ev.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
    tip.style.left = x + 'px';
    tip.style.top = (ev.clientY + 16) + 'px';
  }
  document.getElementById('reset').addEventListener('click', function () { zoom(root); });
  var groupSel = document.getElementById('group');
  if (groupSel && (doc.callgraph || []).some(function (cg) { return cg.kinds; })) {
    groupSel.hidden = false;
    groupSel.addEventListener('change', function () {
      root = build(groupSel.value);
      zoomed = root;
      tip.style.display = 'none';
      flame.setAttribute('data-group', groupSel.value);
      render();
    });
  }
  document.getElementById('search').addEventListener('input', function (ev) {
    var v = ev.target.value;
    try { searchRe = v ? new RegExp(v, 'i') : null; ev.target.style.borderColor = ''; }
    catch (e) { searchRe = null; ev.target.style.borderColor = '#c0392b'; }
    render();
  });
  if (grand > 0) render();
  else flame.appendChild(el('div', { style: 'padding:10px;color:#6b7385' }, 'No call stacks were recorded.'));

  /* ---------------- top functions ---------------- */
  var funcs = (doc.functions || []).slice().sort(function (a, b) { return b.self_ns - a.self_ns; });
  var selfSum = funcs.reduce(function (s, f) { return s + Number(f.self_ns); }, 0);
  var top = document.getElementById('top');
  var head = el('tr');
  ['function', 'kind', 'calls', 'errors', 'total', 'self', 'self %'].forEach(function (h, i) {
    head.appendChild(el('th', i > 1 ? { 'class': 'num' } : null, h));
  });
  top.appendChild(head);
  funcs.slice(0, TOP).forEach(function (f) {
    var tr = el('tr');
    var td = el('td'); td.appendChild(el('a', { href: '#' + slug(f.func_id) }, f.signature)); tr.appendChild(td);
    tr.appendChild(el('td', null, f.kind));
    tr.appendChild(el('td', { 'class': 'num' }, fmtInt(f.calls)));
    tr.appendChild(el('td', { 'class': 'num' }, fmtInt(f.errors)));
    tr.appendChild(el('td', { 'class': 'num' }, fmtTime(f.total_ns)));
    tr.appendChild(el('td', { 'class': 'num' }, fmtTime(f.self_ns)));
    tr.appendChild(el('td', { 'class': 'num' }, fmtPct(f.self_ns, selfSum)));
    top.appendChild(tr);
  });

  /* ---------------- per-function line tables ---------------- */
  var box = document.getElementById('functions');
  funcs.slice(0, TOP).forEach(function (f) {
    var sec = el('div', { 'class': 'function', id: slug(f.func_id) });
    sec.appendChild(el('h3', null, f.signature));
    sec.appendChild(el('div', { 'class': 'sub' }, f.kind + ' \u00b7 ' + fmtInt(f.calls) + ' calls \u00b7 total ' +
      fmtTime(f.total_ns) + ' \u00b7 self ' + fmtTime(f.self_ns) + ' \u00b7 max ' + fmtTime(f.max_ns) +
      (f.is_current === false ? ' \u00b7 an older version of the function' : '')));
    var t = el('table', { 'class': 'lines' });
    var hr = el('tr');
    ['line', 'exec', 'total', 'self', 'max', 'share', 'source'].forEach(function (h, i) {
      hr.appendChild(el('th', i < 5 ? { 'class': 'num' } : null, h));
    });
    t.appendChild(hr);
    var lineSelf = (f.lines || []).reduce(function (s, l) { return s + (l.line > 0 ? Number(l.self_ns) : 0); }, 0);
    (f.lines || []).forEach(function (l) {
      var tr = el('tr');
      if (l.line === 0) tr.className = 'hot';
      else if (!Number(l.exec_count)) tr.className = 'zero';
      else if (Number(l.error_count)) tr.className = 'err';
      tr.appendChild(el('td', { 'class': 'num' }, String(l.line)));
      tr.appendChild(el('td', { 'class': 'num' }, fmtInt(l.exec_count)));
      tr.appendChild(el('td', { 'class': 'num' }, fmtTime(l.total_ns)));
      tr.appendChild(el('td', { 'class': 'num' }, fmtTime(l.self_ns)));
      tr.appendChild(el('td', { 'class': 'num' }, fmtTime(l.max_ns)));
      var bc = el('td', { 'class': 'barcell', title: fmtPct(l.self_ns, lineSelf) + ' of the function\'s statement time' });
      if (l.line > 0 && lineSelf > 0 && Number(l.self_ns) > 0) {
        var bar = el('span', { 'class': 'bar' });
        bar.style.width = Math.max(1, Math.round(100 * Number(l.self_ns) / lineSelf)) + 'px';
        bc.appendChild(bar);
      }
      tr.appendChild(bc);
      tr.appendChild(el('td', { 'class': 'src' }, l.line === 0 ? '(function totals)' : (l.source || '')));
      t.appendChild(tr);
    });
    sec.appendChild(t);
    var errs = (f.statements || []).filter(function (s) { return Number(s.error_count) > 0; });
    if (errs.length) {
      var ul = el('ul', { 'class': 'errors' });
      errs.forEach(function (s) {
        ul.appendChild(el('li', null, 'line ' + s.line + ' (' + s.type + '): raised ' + fmtInt(s.error_count) +
          ' of ' + fmtInt(s.exec_count) + ' executions'));
      });
      sec.appendChild(el('div', { 'class': 'warn' }, 'Statements that raised errors'));
      sec.appendChild(ul);
    }
    box.appendChild(sec);
  });
  document.body.setAttribute('data-ready', 'true');
})();
