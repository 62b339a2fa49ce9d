/*
 * util.js: the small helpers every page uses. DOM is built with h() and
 * textContent only, never innerHTML, so data from the API (VINs, offer
 * titles, promo codes) cannot become markup. Numbers and times are formatted
 * in one place so the table, the vehicle page and the charts agree.
 */
'use strict';
window.Pitstop = window.Pitstop || {};
(function (P) {
	/* h('a', {href: '#/x', class: 'y'}, 'text', child...): an element.
	 * Attributes starting with "on" take a function (addEventListener);
	 * null and false attributes and children are skipped. */
	function h(tag, attrs) {
		var el = document.createElement(tag);
		var k;
		for (k in attrs || {}) {
			var v = attrs[k];
			if (v === null || v === undefined || v === false)
				continue;
			if (k.slice(0, 2) === 'on' && typeof v === 'function')
				el.addEventListener(k.slice(2), v);
			else if (k === 'class')
				el.className = v;
			else if (v === true)
				el.setAttribute(k, '');
			else
				el.setAttribute(k, String(v));
		}
		for (var i = 2; i < arguments.length; i++)
			append(el, arguments[i]);
		return el;
	}

	function append(el, c) {
		if (c === null || c === undefined || c === false)
			return;
		if (Array.isArray(c)) {
			c.forEach(function (x) { append(el, x); });
			return;
		}
		el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
	}

	function clear(el) {
		while (el.firstChild)
			el.removeChild(el.firstChild);
		return el;
	}

	function isNum(x) {
		return typeof x === 'number' && isFinite(x);
	}

	var DASH = '\u2014'; /* shown for a value the gateway does not know */

	function fmtNum(x, digits, unit) {
		if (!isNum(x))
			return DASH;
		return x.toLocaleString(undefined, {
			minimumFractionDigits: digits, maximumFractionDigits: digits
		}) + (unit ? '\u00a0' + unit : '');
	}

	function fmtFuel(x) { return fmtNum(x, 1, '%'); }
	function fmtKm(x) { return fmtNum(x, 1, 'km'); }

	function fmtTime(iso) {
		if (!iso)
			return DASH;
		var d = new Date(iso);
		if (isNaN(d.getTime()))
			return DASH;
		return d.toLocaleString(undefined, {
			year: 'numeric', month: 'short', day: 'numeric',
			hour: '2-digit', minute: '2-digit'
		});
	}

	/* "5 min ago" style, coarse on purpose; the exact time goes in a title. */
	function fmtAgo(iso, now) {
		if (!iso)
			return 'never';
		var t = new Date(iso).getTime();
		if (isNaN(t))
			return DASH;
		var s = Math.round(((now || Date.now()) - t) / 1000);
		if (s < 0)
			return 'just now';
		if (s < 60)
			return s + ' s ago';
		if (s < 3600)
			return Math.floor(s / 60) + ' min ago';
		if (s < 86400)
			return Math.floor(s / 3600) + ' h ago';
		return Math.floor(s / 86400) + ' d ago';
	}

	function fmtDuration(seconds) {
		if (!isNum(seconds))
			return DASH;
		var m = Math.round(seconds / 60);
		return m < 60 ? m + ' min' : Math.floor(m / 60) + ' h ' + (m % 60) + ' min';
	}

	/* online: true, false or null (never reported a status). */
	function onlineBadge(online) {
		var label = online === true ? 'online' : online === false ? 'offline' : 'unknown';
		return h('span', {class: 'badge badge-' + label}, label);
	}

	var ROLE_NAMES = {
		operator: 'operator',
		fleet_manager: 'fleet manager',
		service_advisor: 'service advisor'
	};
	function roleName(role) {
		return ROLE_NAMES[role] || role;
	}

	/* YYYY-MM-DD of a Date, UTC (the gateway's daily rollups are UTC days). */
	function isoDay(d) {
		return d.toISOString().slice(0, 10);
	}

	/* A car's state after live event ev, prev being what the page had. An
	 * event is a state change: a fleet it leaves out (null) is not taken
	 * for a move out of the fleet, which only the listing says. */
	function liveMerge(prev, ev) {
		var v = Object.assign({}, prev, ev);
		if (ev.fleet === null || ev.fleet === undefined)
			v.fleet = prev.fleet;
		return v;
	}

	/* A message box in el; kind: "error", "empty" or "info". */
	function notice(kind, title, text) {
		return h('div', {class: 'notice notice-' + kind, role: kind === 'error' ? 'alert' : null},
			h('p', {class: 'notice-title'}, title), text ? h('p', null, text) : null);
	}

	Object.assign(P, {h: h, clear: clear, isNum: isNum, fmtNum: fmtNum, fmtFuel: fmtFuel,
		fmtKm: fmtKm, fmtTime: fmtTime, fmtAgo: fmtAgo, fmtDuration: fmtDuration,
		onlineBadge: onlineBadge, roleName: roleName, liveMerge: liveMerge, isoDay: isoDay, notice: notice});
})(window.Pitstop);
