/*
 * app.js: the router and the frame around the pages. Hash routes:
 *   #/login             login (also where any 401 lands)
 *   #/fleet?filters     fleet overview (fleet.js)
 *   #/vehicle/<VIN>     one vehicle (vehicle.js)
 *   #/service?within=N  service items due (service.js)
 *   #/campaigns?days=N  each promotion rule's funnel (campaigns.js)
 * The session is checked once with GET /api/v1/me (the token of this tab);
 * a page asked for before logging in is shown after it.
 * On every page change the previous page's cleanup runs (its map, charts
 * and live subscription) and focus moves to the new page's heading, so a
 * keyboard or screen-reader user starts at the top of what changed.
 */
'use strict';
(function (P) {
	var h = P.h;
	var main, current = null, user = null, wanted = null, reason = null;

	/* {page, arg, query} of a location hash. */
	function parse(hash) {
		var s = (hash || '').replace(/^#/, '');
		var qi = s.indexOf('?');
		var path = qi < 0 ? s : s.slice(0, qi);
		var query = {};
		if (qi >= 0) {
			s.slice(qi + 1).split('&').forEach(function (kv) {
				if (!kv)
					return;
				var eq = kv.indexOf('=');
				var k = decodeURIComponent(eq < 0 ? kv : kv.slice(0, eq));
				query[k] = eq < 0 ? '' : decodeURIComponent(kv.slice(eq + 1).replace(/\+/g, ' '));
			});
		}
		var parts = path.split('/').filter(Boolean);
		if (parts[0] === 'vehicle' && parts.length === 2)
			return {page: 'vehicle', arg: decodeURIComponent(parts[1]), query: query};
		if (parts[0] === 'login' && parts.length === 1)
			return {page: 'login', query: query};
		if (parts[0] === 'fleet' && parts.length === 1)
			return {page: 'fleet', query: query};
		if (parts[0] === 'service' && parts.length === 1)
			return {page: 'service', query: query};
		if (parts[0] === 'campaigns' && parts.length === 1)
			return {page: 'campaigns', query: query};
		if (!parts.length)
			return {page: 'fleet', query: query};
		return {page: 'unknown', arg: path, query: query};
	}

	function frame() {
		var logged = !!user;
		document.getElementById('nav').hidden = !logged;
		document.getElementById('logout').hidden = !logged;
		var who = document.getElementById('who');
		who.hidden = !logged;
		P.clear(who);
		if (logged) {
			who.appendChild(h('span', {class: 'who-name', id: 'who-name'}, user.name));
			who.appendChild(h('span', {class: 'who-role', id: 'who-role'}, ' \u00b7 ' + P.roleName(user.role) +
				(user.role === 'fleet_manager' && user.fleets && user.fleets.length ?
					' of ' + user.fleets.join(', ') : '')));
		}
		var live = document.getElementById('live');
		live.hidden = !logged || user.role === 'service_advisor';
		/* the statistics are the operator's (GET /offers/stats) */
		document.getElementById('nav-campaigns').hidden = !logged || user.role !== 'operator';
	}

	function route() {
		var r = parse(location.hash);
		if (current) {
			try {
				current();
			} catch (e) {
				/* a page's cleanup must not stop the next page */
			}
			current = null;
		}
		P.clear(main);
		if (!user && r.page !== 'login') {
			wanted = location.hash;
			location.replace('#/login');
			return;
		}
		if (user && r.page === 'login') {
			location.replace('#/fleet');
			return;
		}
		document.title = 'Pitstop console';
		['fleet', 'service', 'campaigns'].forEach(function (p) {
			var nav = document.getElementById('nav-' + p);
			if (r.page === p)
				nav.setAttribute('aria-current', 'page');
			else
				nav.removeAttribute('aria-current');
		});
		if (r.page === 'unknown') {
			main.appendChild(h('section', null, h('h1', {tabindex: '-1'}, 'Page not found'),
				h('p', null, 'There is no page ', h('code', null, r.arg), '. ',
					h('a', {href: '#/fleet'}, 'Go to the fleet'), '.')));
		} else {
			r.reason = reason;
			reason = null;
			current = P.pages[r.page](main, r, user) || null;
		}
		if (r.page !== 'login') {
			var h1 = main.querySelector('h1');
			if (h1)
				h1.focus({preventScroll: true});
		}
	}

	function loggedIn(u) {
		user = u;
		frame();
		var to = wanted && wanted.indexOf('#/login') !== 0 ? wanted : '#/fleet';
		wanted = null;
		if (location.hash === to)
			route();
		else
			location.hash = to;
	}

	/* Any 401: the session ended (expired, logged out elsewhere). */
	P.onUnauthorized = function () {
		if (!user)
			return;
		user = null;
		P.api.live.stop();
		frame();
		wanted = location.hash;
		reason = 'Your session has ended. Please log in again.';
		location.hash = '#/login';
	};

	function start() {
		main = document.getElementById('main');
		document.getElementById('skip-link').addEventListener('click', function (ev) {
			ev.preventDefault(); /* "#main" would be taken for a route */
			var h1 = main.querySelector('h1');
			(h1 || main).focus();
		});
		document.getElementById('logout').addEventListener('click', function () {
			P.api.logout().then(function () {
				user = null;
				frame();
				wanted = null;
				location.hash = '#/login';
			});
		});
		var live = document.getElementById('live');
		var LIVE_TEXT = {connecting: 'connecting\u2026', live: 'live', reconnecting: 'reconnecting\u2026',
			offline: 'not live', off: ''};
		P.api.live.onStatus(function (s) {
			live.textContent = LIVE_TEXT[s] || s;
			live.className = 'live live-' + s;
		});
		window.addEventListener('hashchange', route);
		P.api.me().then(function (u) {
			user = u;
			frame();
			route();
		}, function (e) {
			P.clear(main);
			main.appendChild(P.notice('error', 'The gateway cannot be reached', e.message));
		});
	}

	P.app = {loggedIn: loggedIn, parse: parse};
	if (document.readyState === 'loading')
		document.addEventListener('DOMContentLoaded', start);
	else
		start();
})(window.Pitstop);
