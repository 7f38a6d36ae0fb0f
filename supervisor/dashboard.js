/*
 * The qscale dashboard: plots of the supervisor's time series, the table
 * of resources from /status, and the console log's tail.  Plain JS and
 * canvas, nothing fetched from anywhere but qscaled itself.
 */
'use strict';

(function () {
	const COLORS = ['#4e9af1', '#f0a030', '#35b26b', '#e05252',
	    '#a77de8', '#2cc3c3', '#e6799b', '#b8c34a', '#8a929e'];
	const LOG_KEEP = 1000;
	const PERIOD = { status: 3000, series: 5000, log: 1500 };

	let range = 3600;
	let series = null;
	let logLast = -1;
	let logStarted = 0;
	const logLines = [];

	function $(id) { return document.getElementById(id); }

	function el(tag, cls, text) {
		const e = document.createElement(tag);
		if (cls) e.className = cls;
		if (text !== undefined && text !== null) e.textContent = text;
		return e;
	}

	async function getJSON(url) {
		const r = await fetch(url, { cache: 'no-store' });
		if (!r.ok) throw new Error(url + ': HTTP ' + r.status);
		return r.json();
	}

	const failing = new Set();

	function connected(what, ok) {
		if (ok) failing.delete(what);
		else failing.add(what);
		$('conn').hidden = failing.size === 0;
	}

	/* Calls fn now and then every ms, one call at a time. */
	function every(what, ms, fn) {
		const run = async () => {
			try {
				await fn();
				connected(what, true);
			} catch (e) {
				connected(what, false);
			}
			setTimeout(run, ms);
		};
		run();
	}

	function ago(ms) {
		if (!ms) return 'never';
		const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
		return duration(s) + ' ago';
	}

	function duration(s) {
		s = Math.round(s);
		if (s < 90) return s + ' s';
		if (s < 5400) return Math.round(s / 60) + ' min';
		if (s < 172800) return (s / 3600).toFixed(1) + ' h';
		return Math.round(s / 86400) + ' d';
	}

	/* ---- plots ---- */

	/* A tick step of 1, 2 or 5 times a power of ten, at least 1. */
	function tickStep(max) {
		const raw = Math.max(max / 4, 1);
		const p = Math.pow(10, Math.floor(Math.log10(raw)));
		for (const m of [1, 2, 5])
			if (m * p >= raw) return m * p;
		return 10 * p;
	}

	function timeStep(span) {
		const steps = [15, 30, 60, 300, 600, 900, 1800, 3600, 7200,
		    10800, 21600];
		for (const s of steps)
			if (span / (s * 1000) <= 6) return s * 1000;
		return 43200000;
	}

	function hhmm(t, secs) {
		const d = new Date(t), p = (n) => String(n).padStart(2, '0');
		return p(d.getHours()) + ':' + p(d.getMinutes()) +
		    (secs ? ':' + p(d.getSeconds()) : '');
	}

	/*
	 * lines: [{name, color, t: [], v: [], dash}] drawn over the range
	 * ending now; a null value or a long silence breaks a line.
	 */
	function plot(canvas, lines, now) {
		const dpr = window.devicePixelRatio || 1;
		const w = canvas.clientWidth || 400, h = canvas.clientHeight || 200;
		canvas.width = Math.round(w * dpr);
		canvas.height = Math.round(h * dpr);
		const g = canvas.getContext('2d');
		g.setTransform(dpr, 0, 0, dpr, 0, 0);
		g.clearRect(0, 0, w, h);

		const pad = { l: 36, r: 10, t: 8, b: 22 };
		/* a young daemon's few minutes fill the plot, not a sliver */
		let first = now;
		for (const s of lines)
			if (s.t.length && s.t[0] < first) first = s.t[0];
		const t1 = now;
		const t0 = Math.min(t1 - 120000, Math.max(now - range * 1000,
		    first));
		let max = 0, points = 0, top = 0;
		for (const s of lines)
			for (const v of s.v) {
				if (v !== null && v > max) max = v;
				if (v !== null && v > top && !s.dash) top = v;
			}
		const ystep = tickStep(max);
		const ymax = Math.max(ystep, Math.ceil(max / ystep) * ystep);
		const X = (t) => pad.l + (t - t0) / (t1 - t0) * (w - pad.l - pad.r);
		const Y = (v) => h - pad.b - v / ymax * (h - pad.t - pad.b);

		g.font = '11px system-ui, sans-serif';
		g.fillStyle = '#8a929e';
		g.strokeStyle = '#2c313a';
		g.lineWidth = 1;
		g.textAlign = 'right';
		g.textBaseline = 'middle';
		for (let v = 0; v <= ymax; v += ystep) {
			const y = Math.round(Y(v)) + 0.5;
			g.beginPath();
			g.moveTo(pad.l, y);
			g.lineTo(w - pad.r, y);
			g.stroke();
			g.fillText(String(v), pad.l - 6, y);
		}
		g.textAlign = 'center';
		g.textBaseline = 'top';
		const step = timeStep(t1 - t0);
		for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step)
			g.fillText(hhmm(t, step < 60000), X(t), h - pad.b + 6);

		for (const s of lines) {
			const gap = s.gap || 30000;
			g.strokeStyle = s.color;
			g.lineWidth = s.dash ? 1.5 : 2;
			g.setLineDash(s.dash ? [5, 4] : []);
			g.beginPath();
			let open = false, prev = 0, last = null;
			for (let i = 0; i < s.t.length; i++) {
				const t = s.t[i], v = s.v[i];
				if (t < t0 || v === null || v === undefined) {
					open = false;
					last = null;
					continue;
				}
				if (open && t - prev > gap)
					open = false;
				if (open)
					g.lineTo(X(t), Y(v));
				else
					g.moveTo(X(t), Y(v));
				open = true;
				prev = t;
				last = [X(t), Y(v)];
				if (!s.dash) points++;
			}
			g.stroke();
			/* the current value, seen even when it is a lone point */
			if (last && !s.dash) {
				g.fillStyle = s.color;
				g.beginPath();
				g.arc(last[0], last[1], 3, 0, 2 * Math.PI);
				g.fill();
			}
		}
		g.setLineDash([]);
		canvas.dataset.points = String(points);
		canvas.dataset.max = String(top);
		canvas.dataset.series = String(lines.filter((s) => !s.dash).length);
	}

	function legend(div, lines) {
		div.replaceChildren();
		for (const s of lines) {
			const item = el('span');
			const sw = el('i', s.dash ? 'dash' : '');
			if (s.dash) sw.style.borderColor = s.color;
			else sw.style.background = s.color;
			item.append(sw, s.name);
			div.append(item);
		}
	}

	function gapFor(s) {
		return Math.max(3 * s.fine_step_s, range > 7200 ?
		    3 * s.coarse_step_s : 0) * 1000;
	}

	function drawPlots() {
		if (!series) return;
		const s = series, now = Date.now(), gap = gapFor(s);
		const res = s.resources, gl = s.global;
		const color = (i) => COLORS[i % COLORS.length];

		const inst = res.map((r, i) => ({ name: r.name, color: color(i),
		    t: r.t, v: r.instances, gap: gap }));
		inst.unshift({ name: 'all resources', color: '#d8dce3',
		    t: gl.t, v: gl.in_use, gap: gap });
		inst.push({ name: 'allowed', color: '#e05252', t: gl.t,
		    v: gl.cap, dash: true, gap: gap });
		plot($('plot-instances'), inst, now);
		legend($('legend-instances'), inst);
		const capNow = gl.cap.length ? gl.cap[gl.cap.length - 1] : null;
		const useNow = gl.in_use.length ?
		    gl.in_use[gl.in_use.length - 1] : null;
		$('cap-note').textContent = capNow === null ? '' :
		    (useNow === null ? '?' : useNow) + ' of ' + capNow +
		    ' allowed';

		const idle = res.map((r, i) => ({ name: r.name, color: color(i),
		    t: r.t, v: r.idle, gap: gap }));
		plot($('plot-idle'), idle, now);
		legend($('legend-idle'), idle);

		const queue = res.map((r, i) => ({ name: r.name + ' (' +
		    r.queue + ')', color: color(i), t: r.t, v: r.pending,
		    gap: gap }));
		plot($('plot-queue'), queue, now);
		legend($('legend-queue'), queue);
	}

	async function refreshSeries() {
		series = await getJSON('/api/series?range=' + range);
		drawPlots();
	}

	/* ---- the table ---- */

	function instancesText(w) {
		const by = {};
		for (const i of w.instances || []) {
			if (i.state !== 'pending' && i.state !== 'running')
				continue;
			const k = i.state + ' ' + i.market;
			by[k] = (by[k] || 0) + 1;
		}
		const parts = Object.keys(by).sort().map((k) => by[k] + ' ' + k);
		return parts.length ? parts.join(', ') : 'none';
	}

	function stateCell(r) {
		const td = el('td');
		const w = r.worker;
		let cls = 'ok', text = w ? w.state : r.state;
		if (r.state !== 'running') cls = 'bad';
		else if (!w) cls = 'warn';
		else if (w.state === 'degraded') cls = 'warn';
		else if (w.state !== 'scaling') cls = 'bad';
		if (r.state !== 'running') text = r.state;
		td.append(el('span', 'badge ' + cls, text));
		const note = w && w.note ? w.note :
		    (r.state !== 'running' && r.last_exit ? r.last_exit : '');
		if (note) td.append(el('span', 'sub', note));
		return td;
	}

	function num(v) {
		const td = el('td', 'num', v === undefined || v === null ?
		    '–' : String(v));
		return td;
	}

	function resourceRow(r) {
		const w = r.worker, c = w ? w.counts || {} : {};
		const tr = el('tr');
		const name = el('td', '', r.name);
		name.append(el('span', 'sub', r.instance_type +
		    (r.spot ? ', spot' : '') + ', max ' + r.max_instances));
		tr.append(name, el('td', '', r.queue), stateCell(r));
		const inst = el('td', '', w ? instancesText(w) : '–');
		if (w && w.spot && w.spot.blackout)
			inst.append(el('span', 'sub', 'spot blackout'));
		tr.append(inst, num(c.idle), num(c.busy), num(c.booting),
		    num(c.pending), num(w && w.oldest_wait_s ?
		    duration(w.oldest_wait_s) : (w ? '0 s' : null)));
		tr.append(el('td', '', w ? ago(w.last_poll) : '–'));
		const err = num(c.errors);
		if (w && w.last_error) {
			err.className = 'num err';
			err.append(el('span', 'sub', w.last_error));
		}
		tr.append(err, num(r.restarts));
		return tr;
	}

	function updateFilter(names) {
		const sel = $('log-filter');
		const have = Array.from(sel.options).map((o) => o.value);
		for (const n of ['qscaled'].concat(names))
			if (!have.includes(n))
				sel.append(new Option(n, n));
	}

	async function refreshStatus() {
		const s = await getJSON('/status');
		const g = s.global || {};
		document.title = 'qscale ' + s.name;
		$('name').textContent = s.name;
		const tbody = $('resources').tBodies[0];
		tbody.replaceChildren(...s.resources.map(resourceRow));
		const cap = g.max_instances_total > 0 ? g.max_instances_total :
		    s.resources.reduce((a, r) => a + r.max_instances, 0);
		$('in-use').textContent = 'instances ' + g.instances_in_use +
		    ' of ' + cap + (g.max_instances_total > 0 ?
		    ' (global cap)' : '');
		const b = g.blackout || {};
		$('blackout').hidden = !b.active;
		if (b.active)
			$('blackout').textContent = 'spot blackout (' +
			    b.resource + ': ' + b.reason + ') until ' +
			    hhmm(b.until);
		$('meta').textContent = 'qscaled ' + s.version + ', pid ' +
		    s.pid + ', up ' + duration((s.now - s.started) / 1000) +
		    ', ' + g.restarts + ' restart' +
		    (g.restarts === 1 ? '' : 's');
		updateFilter(s.resources.map((r) => r.name));
	}

	/* ---- the console ---- */

	const LINE_RE = /^(\S+) (ERROR|WARN|INFO|DEBUG) ([^:]*): /;

	function logShow() {
		const pre = $('log'), filter = $('log-filter').value;
		const follow = $('log-follow').checked;
		const frag = document.createDocumentFragment();
		for (const l of logLines) {
			const m = LINE_RE.exec(l);
			if (filter && (!m || m[3] !== filter)) continue;
			frag.append(el('span', m ? m[2] : '', l + '\n'));
		}
		pre.replaceChildren(frag);
		if (follow) pre.scrollTop = pre.scrollHeight;
	}

	async function refreshLog() {
		const url = '/api/log?limit=500' +
		    (logLast >= 0 ? '&after=' + logLast : '');
		const r = await getJSON(url);
		const pre = $('log');
		if (r.started !== logStarted || r.last < logLast) {
			/* qscaled restarted: start over */
			logLines.length = 0;
			logStarted = r.started;
			if (logLast >= 0) {
				logLast = -1;
				return refreshLog();
			}
		}
		if (r.lines.length === 0) return;
		logLines.push(...r.lines);
		if (logLines.length > LOG_KEEP)
			logLines.splice(0, logLines.length - LOG_KEEP);
		logLast = r.last;
		pre.dataset.last = String(logLast);
		pre.dataset.count = String(Number(pre.dataset.count) +
		    r.lines.length);
		pre.dataset.updates = String(Number(pre.dataset.updates) + 1);
		logShow();
	}

	/* ---- wiring ---- */

	function start() {
		for (const b of document.querySelectorAll('.range button'))
			b.addEventListener('click', () => {
				range = Number(b.dataset.range);
				for (const o of document.querySelectorAll(
				    '.range button'))
					o.classList.toggle('on', o === b);
				refreshSeries().catch(() =>
				    connected('series', false));
			});
		$('log-filter').addEventListener('change', logShow);
		window.addEventListener('resize', drawPlots);
		every('status', PERIOD.status, refreshStatus);
		every('series', PERIOD.series, refreshSeries);
		every('log', PERIOD.log, refreshLog);
	}

	if (document.readyState === 'loading')
		document.addEventListener('DOMContentLoaded', start);
	else
		start();
})();
