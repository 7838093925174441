// SPDX-License-Identifier: MIT
// The ckptd dashboard (docs/dashboard.md): operations, one operation's loss
// and val_loss per step with marks at checkpoints, detections and restarts,
// its events and checkpoints, and the store's size. It talks only to the
// ckptd that served it (docs/api.md) and polls once a second, so a new step
// shows within about a second of its report. Over TCP the page was opened as
// /?token=T; every request carries that token as a bearer token.
(function () {
	'use strict';
	var T0 = performance.now();
	var params = new URLSearchParams(location.search);
	var token = params.get('token');
	var HEADERS = token ? { Authorization: 'Bearer ' + token } : {};
	var POLL_MS = 1000;
	var COLORS = { ck: '#2e7d32', det: '#d32f2f', rs: '#1565c0' };

	// What the browser test and the bench read (tests/dashboard/).
	var dash = (window.ckptDash = {
		op: null, points: 0, chartSteps: 0, lossPoints: 0, marks: [],
		firstChartMs: null, polls: 0, errors: 0, lastError: null,
		drawnSteps: function () { return cur && cur.u ? cur.u.data[0].length : 0; }
	});

	function $(id) { return document.getElementById(id); }
	function el(tag, text, cls) {
		var e = document.createElement(tag);
		if (text !== undefined && text !== null) e.textContent = String(text);
		if (cls) e.className = cls;
		return e;
	}
	function api(path) {
		return fetch(path, { headers: HEADERS, cache: 'no-store' }).then(function (r) {
			if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
			return r.json();
		});
	}
	function fmtNum(v) {
		if (v === null || v === undefined) return '-';
		return Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(3) : +v.toPrecision(5) + '';
	}
	function fmtBytes(n) {
		if (n === null || n === undefined) return '-';
		var u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'], i = 0;
		while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
		return (i ? n.toFixed(1) : n) + ' ' + u[i];
	}
	function shortTime(iso) { return iso ? iso.slice(11, 19) : '-'; }

	// ---- the operations list ----
	var ops = [];
	function renderOps() {
		var tb = $('ops').tBodies[0];
		tb.textContent = '';
		$('ops-empty').hidden = ops.length > 0;
		ops.forEach(function (o) {
			var p = o.progress || {}, tr = el('tr');
			tr.dataset.id = o.id;
			if (o.id === dash.op) tr.className = 'sel';
			tr.appendChild(el('td', o.name ? o.name + ' · ' + o.id.slice(-6) : o.id)).title = o.id;
			tr.appendChild(el('td', o.status, 'st st-' + o.status));
			tr.appendChild(el('td', p.percent !== null && p.percent !== undefined ? p.percent.toFixed(0) + '%' : '-'));
			tr.appendChild(el('td', p.step !== null && p.step !== undefined ? p.step : '-'));
			tr.appendChild(el('td', fmtNum(p.loss)));
			tr.onclick = function () { location.hash = 'op=' + o.id; };
			tb.appendChild(tr);
		});
	}

	// ---- one operation ----
	var cur = null; // state of the selected operation
	function newState(id) {
		return {
			id: id, attempt: [], step: [], loss: [], val: [], last: null,
			events: [], evSeq: 0, ckpts: null, ckptAt: 0, u: null, zoomed: false, dirty: true
		};
	}

	// Per step: the value of the newest attempt that reported it (a restart
	// trains steps again); the values it replaced go to "earlier attempts".
	function chartData(s, alpha) {
		var n = s.step.length, x = [], loss = [], val = [], old = [], at = new Map();
		var monotone = true;
		for (var i = 1; i < n && monotone; i++) if (s.step[i] <= s.step[i - 1]) monotone = false;
		for (i = 0; i < n; i++) {
			var st = s.step[i], k = monotone ? undefined : at.get(st);
			if (k === undefined) {
				k = x.length; x.push(st); loss.push(null); val.push(null); old.push(null);
				if (!monotone) at.set(st, k);
			} else if (loss[k] !== null && s.loss[i] !== null) {
				old[k] = loss[k];
			}
			if (s.loss[i] !== null) loss[k] = s.loss[i];
			if (s.val[i] !== null) val[k] = s.val[i];
		}
		if (!monotone) {
			var ord = x.map(function (_, j) { return j; }).sort(function (a, b) { return x[a] - x[b]; });
			var pick = function (arr) { return ord.map(function (j) { return arr[j]; }); };
			x = pick(x); loss = pick(loss); val = pick(val); old = pick(old);
		}
		var lp = 0;
		for (i = 0; i < loss.length; i++) if (loss[i] !== null) lp++;
		dash.chartSteps = x.length; dash.lossPoints = lp;
		if (alpha > 0) { // exponential moving average, as TensorBoard's slider
			var m = null, sm = new Array(loss.length);
			for (i = 0; i < loss.length; i++) {
				if (loss[i] !== null) m = m === null ? loss[i] : alpha * m + (1 - alpha) * loss[i];
				sm[i] = loss[i] === null ? null : m;
			}
			loss = sm;
		}
		return [x, loss, val, old];
	}

	function stepOfCheckpoint(s, path, before) {
		var i, e;
		for (i = before - 1; i >= 0; i--) {
			e = s.events[i];
			if (e.event === 'checkpoint_selected' && e.checkpoint === path && e.step !== null) return e.step;
		}
		var cks = (s.ckpts && s.ckpts.checkpoints) || [];
		for (i = 0; i < cks.length; i++) if (cks[i].path === path && cks[i].step !== null) return cks[i].step;
		for (i = 0; i < s.events.length; i++) {
			e = s.events[i];
			if (e.event === 'checkpoint_committed' && e.checkpoint === path && e.step !== null) return e.step;
		}
		return null;
	}

	function firstStepOf(s, attempt) {
		for (var i = 0; i < s.attempt.length; i++) if (s.attempt[i] === attempt) return s.step[i];
		return null;
	}

	function computeMarks(s) {
		var marks = [];
		s.events.forEach(function (e, i) {
			var step = null, kind = null;
			if (e.event === 'checkpoint_committed') { kind = 'ck'; step = e.step; }
			else if (e.event === 'detected') { kind = 'det'; step = e.step; }
			else if (e.event === 'client_created' || e.event === 'resumed') {
				kind = 'rs';
				// ckptd names the step of the version it resumed from
				step = e.step !== null ? e.step : e.checkpoint ? stepOfCheckpoint(s, e.checkpoint, i) : 0;
				if (step === null) step = firstStepOf(s, e.attempt);
			}
			if (kind && step !== null && step !== undefined)
				marks.push({ kind: kind, step: step, attempt: e.attempt, event: e.event, seq: e.seq });
		});
		// restarts over the checkpoint they resumed from, detections over both
		var order = { ck: 0, rs: 1, det: 2 };
		marks.sort(function (a, b) { return order[a.kind] - order[b.kind] || a.seq - b.seq; });
		dash.marks = marks;
		return marks;
	}

	function drawMarks(u) {
		if (!cur) return;
		var ctx = u.ctx, b = u.bbox, marks = dash.marks;
		ctx.save();
		ctx.lineWidth = 2 * devicePixelRatio;
		marks.forEach(function (m) {
			var x = Math.round(u.valToPos(m.step, 'x', true));
			if (x < b.left || x > b.left + b.width) return;
			ctx.strokeStyle = COLORS[m.kind];
			ctx.setLineDash(m.kind === 'ck' ? [4 * devicePixelRatio, 3 * devicePixelRatio] : []);
			ctx.beginPath(); ctx.moveTo(x, b.top); ctx.lineTo(x, b.top + b.height); ctx.stroke();
		});
		ctx.restore();
	}

	function chartWidth() { return Math.max(320, $('chart').clientWidth || $('op-pane').clientWidth - 32); }

	function renderChart(s) {
		var alpha = +$('smooth').value;
		var data = chartData(s, alpha);
		computeMarks(s);
		$('npoints').textContent = dash.points + ' reported steps';
		$('chart-empty').hidden = data[0].length > 0;
		if (!s.u) {
			if (!data[0].length) return;
			var opts = {
				width: chartWidth(), height: 360,
				scales: { x: { time: false } },
				series: [
					{ label: 'step' },
					{ label: 'loss', stroke: '#1f77b4', width: 1.5, spanGaps: true, points: { show: false } },
					{ label: 'val_loss', stroke: '#ff7f0e', width: 2, spanGaps: true, points: { show: true, size: 5 } },
					{ label: 'earlier attempts', stroke: 'rgba(110,110,110,.55)', width: 1, dash: [4, 3], points: { show: false } }
				],
				axes: [{ label: 'step' }, { label: 'loss' }],
				cursor: { drag: { x: true, y: false } },
				hooks: {
					draw: [drawMarks],
					setSelect: [function (u) { if (u.select.width > 0) s.zoomed = true; }]
				}
			};
			s.u = new uPlot(opts, data, $('chart'));
			$('chart').ondblclick = function () { s.zoomed = false; };
			if (dash.firstChartMs === null) dash.firstChartMs = performance.now() - T0;
		} else {
			s.u.setData(data, !s.zoomed);
		}
	}

	function renderEvents(s) {
		var tb = $('events').tBodies[0];
		tb.textContent = '';
		s.events.slice().reverse().slice(0, 200).forEach(function (e) {
			var tr = el('tr', null, 'ev-' + e.event);
			tr.appendChild(el('td', shortTime(e.time))).title = e.time;
			tr.appendChild(el('td', e.attempt));
			tr.appendChild(el('td', e.event));
			tr.appendChild(el('td', e.step === null ? '' : e.step));
			tr.appendChild(el('td', e.reason || '', 'reason'));
			tb.appendChild(tr);
		});
	}

	function renderCkpts(s) {
		var tb = $('ckpts').tBodies[0], c = s.ckpts || {};
		var latest = c.latest && c.latest.version, best = c.best;
		tb.textContent = '';
		(c.checkpoints || []).forEach(function (v) {
			var tr = el('tr'), tags = el('td');
			tr.appendChild(el('td', v.version)).title = v.path;
			tr.appendChild(el('td', v.step === null ? '-' : v.step));
			tr.appendChild(el('td', fmtBytes(v.size_bytes)));
			tr.appendChild(el('td', v.state));
			if (v.version === best) tags.appendChild(el('span', 'best', 'badge best'));
			if (v.version === latest) tags.appendChild(el('span', 'latest', 'badge latest'));
			tr.appendChild(tags);
			tb.appendChild(tr);
		});
	}

	function renderHead(o) {
		if (!o) return;
		var p = o.progress || {};
		$('op-title').textContent = (o.name ? o.name + ' — ' : '') + o.id;
		$('op-line').textContent = [
			o.status, 'attempt ' + o.attempt + '/' + o.max_attempts,
			'step ' + (p.step === null ? '-' : p.step), 'loss ' + fmtNum(p.loss), 'val_loss ' + fmtNum(p.val_loss),
			o.recoveries ? o.recoveries + ' recoveries' : null, o.reason ? 'reason: ' + o.reason : null
		].filter(Boolean).join(' · ');
	}

	function appendPoints(s, m) {
		for (var i = 0; i < m.step.length; i++) {
			s.attempt.push(m.attempt[i]); s.step.push(m.step[i]);
			s.loss.push(m.loss[i]); s.val.push(m.val_loss[i]);
		}
		if (m.last) s.last = m.last;
		dash.points = s.step.length;
		return m.step.length > 0;
	}

	function pollOp(s) {
		var base = '/api/v1/operations/' + encodeURIComponent(s.id);
		var q = s.last ? '&after_attempt=' + s.last.attempt + '&after=' + s.last.step : '';
		var now = Date.now(), wantCk = s.ckpts === null || now - s.ckptAt > 5000;
		return Promise.all([
			api(base + '/metrics?resolution=step' + q),
			api(base + '/events?after=' + s.evSeq),
			wantCk ? api('/api/v1/checkpoints/' + encodeURIComponent(s.id)) : null
		]).then(function (r) {
			if (s !== cur) return;
			var changed = appendPoints(s, r[0]);
			var evs = r[1].events || [];
			evs.forEach(function (e) {
				s.events.push(e);
				if (e.seq > s.evSeq) s.evSeq = e.seq;
				if (e.event === 'checkpoint_committed') s.ckptAt = 0;
			});
			if (r[2]) { s.ckpts = r[2]; s.ckptAt = now; renderCkpts(s); changed = true; }
			if (evs.length) { renderEvents(s); changed = true; }
			if (changed || s.dirty) { s.dirty = false; renderChart(s); }
		});
	}

	var storeAt = 0;
	function pollStore() {
		if (Date.now() - storeAt < 5000) return null;
		storeAt = Date.now();
		return api('/api/v1/checkpoints/stats').then(function (st) {
			var logical = st.logical_bytes !== undefined ? st.logical_bytes : st.total_size_bytes;
			var ratio = st.stored_bytes ? logical / st.stored_bytes : 1;
			$('store').textContent = 'store: ' + st.total_checkpoints + ' checkpoints · logical ' +
				fmtBytes(logical) + ' · stored ' + fmtBytes(st.stored_bytes) + ' · dedup ' + ratio.toFixed(2) + '×';
		});
	}

	function select(id) {
		if (cur && cur.id === id) return;
		if (cur && cur.u) cur.u.destroy();
		$('chart').textContent = '';
		cur = id ? newState(id) : null;
		dash.op = id; dash.points = 0; dash.chartSteps = 0; dash.lossPoints = 0; dash.marks = [];
		$('op-pane').hidden = !id;
		$('events').tBodies[0].textContent = '';
		$('ckpts').tBodies[0].textContent = '';
		renderOps();
	}

	function fromHash() {
		var m = /op=([A-Za-z0-9_]+)/.exec(location.hash);
		return m ? m[1] : null;
	}

	var busy = false;
	function poll() {
		if (busy) return;
		busy = true;
		// the operation named in the URL is fetched beside the list, not after it
		if (fromHash()) select(fromHash());
		var early = cur ? pollOp(cur) : null;
		Promise.all([api('/api/v1/operations?limit=200'), early, pollStore()]).then(function (r) {
			ops = r[0].operations || [];
			var had = cur;
			select(fromHash() || (cur ? cur.id : null) || (ops[0] && ops[0].id));
			renderOps();
			if (cur) renderHead(ops.filter(function (o) { return o.id === cur.id; })[0]);
			return cur && cur !== had ? pollOp(cur) : null;
		}).then(function () {
			dash.polls++;
			$('conn').textContent = '';
		}).catch(function (e) {
			dash.errors++; dash.lastError = String(e);
			$('conn').textContent = 'ckptd: ' + e.message;
		}).then(function () {
			busy = false;
			setTimeout(poll, POLL_MS);
		});
	}

	$('smooth').oninput = function () {
		$('smooth-v').textContent = this.value;
		if (cur) renderChart(cur);
	};
	$('reset-zoom').onclick = function () {
		if (!cur || !cur.u) return;
		cur.zoomed = false;
		var x = cur.u.data[0];
		cur.u.setScale('x', { min: x[0], max: x[x.length - 1] });
	};
	window.addEventListener('hashchange', function () { select(fromHash()); poll(); });
	window.addEventListener('resize', function () {
		if (cur && cur.u) cur.u.setSize({ width: chartWidth(), height: 360 });
	});
	poll();
})();
