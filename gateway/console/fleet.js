/*
 * fleet.js: the fleet overview (#/fleet?online=&low_fuel=&seen=&fleet=).
 * A map of the cars' last positions and a table with fuel, odometer,
 * online state and last contact, filtered by the API (GET /api/v1/vehicles)
 * and kept current by the live stream. The filters live in the URL, so a
 * filtered view can be bookmarked; changing one replaces the URL without a
 * new history entry. Pages of 200 cars: "Show more" fetches the next one,
 * and the count says when more exist (nothing is cut off unsaid).
 */
'use strict';
(function (P) {
	var h = P.h;
	var PAGE = 200;
	var SEEN = {'': 'any time', '1h': 'in the last hour', '24h': 'in the last 24 hours',
		'7d': 'in the last 7 days'};
	var SEEN_MS = {'1h': 3600e3, '24h': 86400e3, '7d': 7 * 86400e3};
	var COLUMNS = [
		{key: 'vin', label: 'Vehicle'},
		{key: 'fleet', label: 'Fleet'},
		{key: 'online', label: 'State'},
		{key: 'fuel_pct', label: 'Fuel', num: true},
		{key: 'odometer_km', label: 'Odometer', num: true},
		{key: 'seen_at', label: 'Last seen'}
	];

	function filtersFrom(q) {
		var f = {online: q.online === 'true' || q.online === 'false' ? q.online : '',
			low_fuel: '', seen: SEEN[q.seen] !== undefined ? q.seen : '', fleet: q.fleet || ''};
		var pct = parseFloat(q.low_fuel);
		if (isFinite(pct) && pct >= 0 && pct <= 100)
			f.low_fuel = String(pct);
		return f;
	}

	function seenSince(f) {
		return f.seen ? new Date(Date.now() - SEEN_MS[f.seen]).toISOString() : '';
	}

	/* The API's query for filters f. */
	function params(f, after) {
		return {online: f.online, low_fuel: f.low_fuel, seen_since: seenSince(f), fleet: f.fleet,
			limit: PAGE, after: after};
	}

	/* Whether vehicle v (from the live stream) belongs in the filtered list:
	 * the same tests the API applies. */
	function matches(v, f) {
		if (f.online && v.online !== (f.online === 'true'))
			return false;
		if (f.low_fuel && !(P.isNum(v.fuel_pct) && v.fuel_pct <= parseFloat(f.low_fuel)))
			return false;
		if (f.fleet && v.fleet !== f.fleet)
			return false;
		if (f.seen && !(v.seen_at && v.seen_at >= seenSince(f)))
			return false;
		return true;
	}

	function compare(key, num) {
		return function (a, b) {
			var x = a[key], y = b[key];
			if (x === null || x === undefined)
				return y === null || y === undefined ? 0 : 1; /* unknown last */
			if (y === null || y === undefined)
				return -1;
			if (num)
				return x - y;
			return String(x) < String(y) ? -1 : String(x) > String(y) ? 1 : 0;
		};
	}

	P.pages = P.pages || {};
	P.pages.fleet = function (main, route, user) {
		var page = h('section', {class: 'fleet-page', 'aria-labelledby': 'fleet-title'});
		main.appendChild(page);
		page.appendChild(h('h1', {id: 'fleet-title', tabindex: '-1'}, 'Fleet'));

		if (user.role === 'service_advisor') {
			page.appendChild(P.notice('empty', 'No vehicle data for your role yet',
				'Service advisors cannot see vehicles in this version of Pitstop. ' +
				'Ask an operator if you need a car\'s data.'));
			page.lastChild.id = 'no-vehicle-data';
			return null;
		}

		var f = filtersFrom(route.query);
		var items = [];      /* the vehicles shown, in API order */
		var byVin = {};      /* vin -> item */
		var next = null;     /* the API's cursor to the next page, or null */
		var sort = {key: 'vin', dir: 1};
		var markers = {};    /* vin -> Leaflet marker */
		var gone = false;    /* the page was left */
		var renderTimer = null;
		var fitted = false;

		var summary = h('p', {class: 'summary', id: 'fleet-summary', 'aria-live': 'polite'});
		var status = h('div', {class: 'status', id: 'fleet-status'});
		var form = filterForm();
		var mapEl = h('div', {class: 'map', id: 'fleet-map'});
		var tbody = h('tbody', {id: 'fleet-rows'});
		var headRow = h('tr');
		var more = h('button', {type: 'button', id: 'fleet-more', hidden: true}, 'Show more');
		var table = h('table', {class: 'data', id: 'fleet-table'},
			h('caption', {class: 'visually-hidden'}, 'Vehicles'),
			h('thead', null, headRow), tbody);
		page.appendChild(form);
		page.appendChild(summary);
		page.appendChild(status);
		page.appendChild(h('div', {class: 'fleet-grid'},
			h('div', {class: 'map-wrap'}, mapEl),
			h('div', {class: 'table-wrap'}, table, more)));
		var map = P.map.create(mapEl, 'Map of the vehicles\' last positions');
		var layer = L.layerGroup().addTo(map);

		COLUMNS.forEach(function (c) {
			var btn = h('button', {type: 'button', class: 'sort', 'data-key': c.key}, c.label);
			btn.addEventListener('click', function () {
				sort = {key: c.key, dir: sort.key === c.key ? -sort.dir : 1};
				render();
			});
			headRow.appendChild(h('th', {scope: 'col', class: c.num ? 'num' : null}, btn));
		});

		more.addEventListener('click', function () { load(next); });

		function filterForm() {
			var online = h('select', {id: 'filter-online', name: 'online'},
				option('', 'all', f.online), option('true', 'online', f.online),
				option('false', 'offline', f.online));
			var fuel = h('input', {id: 'filter-low-fuel', name: 'low_fuel', type: 'number',
				min: '0', max: '100', step: '1', inputmode: 'numeric', value: f.low_fuel,
				placeholder: 'any'});
			var seen = h('select', {id: 'filter-seen', name: 'seen'},
				Object.keys(SEEN).map(function (k) { return option(k, SEEN[k], f.seen); }));
			var fleet = h('select', {id: 'filter-fleet', name: 'fleet'}, option('', 'all fleets', f.fleet));
			var fleetField = h('div', {class: 'field', hidden: true},
				h('label', {for: 'filter-fleet'}, 'Fleet'), fleet);
			var reset = h('button', {type: 'button', id: 'filter-reset'}, 'Clear filters');
			var el = h('form', {class: 'filters', id: 'fleet-filters', role: 'search',
				'aria-label': 'Filter vehicles'},
				h('div', {class: 'field'}, h('label', {for: 'filter-online'}, 'State'), online),
				h('div', {class: 'field'}, h('label', {for: 'filter-low-fuel'}, 'Fuel at or below (%)'), fuel),
				h('div', {class: 'field'}, h('label', {for: 'filter-seen'}, 'Seen'), seen),
				fleetField, reset);
			function changed() {
				f = filtersFrom({online: online.value, low_fuel: fuel.value, seen: seen.value,
					fleet: fleet.value});
				var q = [];
				Object.keys(f).forEach(function (k) {
					if (f[k])
						q.push(k + '=' + encodeURIComponent(f[k]));
				});
				history.replaceState(null, '', '#/fleet' + (q.length ? '?' + q.join('&') : ''));
				reload();
			}
			el.addEventListener('change', changed);
			el.addEventListener('submit', function (ev) { ev.preventDefault(); changed(); });
			reset.addEventListener('click', function () {
				online.value = fuel.value = seen.value = fleet.value = '';
				changed();
			});
			P.api.get('/fleets').then(function (r) {
				if (gone || !r.items || r.items.length < 2)
					return;
				r.items.forEach(function (x) {
					fleet.appendChild(option(x.name, x.name + ' (' + x.vehicles + ')', f.fleet));
				});
				fleetField.hidden = false;
			}, function () { /* no fleet filter then; the list still loads */ });
			return el;
		}

		function option(value, label, current) {
			return h('option', {value: value, selected: value === current}, label);
		}

		function reload() {
			items = [];
			byVin = {};
			next = null;
			fitted = false;
			layer.clearLayers();
			markers = {};
			load(null);
		}

		function load(after) {
			more.disabled = true;
			P.clear(status);
			status.appendChild(h('p', {class: 'loading'}, 'Loading vehicles\u2026'));
			P.api.get('/vehicles', params(f, after)).then(function (r) {
				if (gone)
					return;
				P.clear(status);
				(r.items || []).forEach(put);
				next = r.next || null;
				render();
			}, function (e) {
				if (gone)
					return;
				P.clear(status);
				if (e.status === 403)
					status.appendChild(P.notice('empty', 'No vehicle data for your role', e.message));
				else if (e.status !== 401)
					status.appendChild(P.notice('error', 'Cannot load the vehicles', e.message));
				more.disabled = false;
			});
		}

		function put(v) {
			if (byVin[v.vin]) {
				var i = items.indexOf(byVin[v.vin]);
				items[i] = v;
			} else {
				items.push(v);
			}
			byVin[v.vin] = v;
		}

		function remove(vin) {
			items = items.filter(function (x) { return x.vin !== vin; });
			delete byVin[vin];
		}

		function scheduleRender() {
			if (!renderTimer)
				renderTimer = setTimeout(function () { renderTimer = null; render(); }, 250);
		}

		function render() {
			if (gone)
				return;
			var sorted = items.slice().sort(compare(sort.key, COLUMNS.some(function (c) {
				return c.key === sort.key && c.num;
			})));
			if (sort.dir < 0)
				sorted.reverse();
			Array.prototype.forEach.call(headRow.children, function (th) {
				var key = th.firstChild.getAttribute('data-key');
				th.setAttribute('aria-sort', key === sort.key ?
					(sort.dir > 0 ? 'ascending' : 'descending') : 'none');
			});
			P.clear(tbody);
			sorted.forEach(function (v) { tbody.appendChild(row(v)); });
			if (!sorted.length) {
				tbody.appendChild(h('tr', {class: 'empty'}, h('td', {colspan: COLUMNS.length},
					f.online || f.low_fuel || f.seen || f.fleet ?
						'No vehicle matches these filters.' : 'No vehicles yet.')));
			}
			more.hidden = !next;
			more.disabled = false;
			renderSummary();
			renderMarkers();
		}

		function row(v) {
			var tr = h('tr', {'data-vin': v.vin},
				h('th', {scope: 'row'}, h('a', {href: '#/vehicle/' + encodeURIComponent(v.vin),
					class: 'vin'}, v.vin)),
				h('td', null, v.fleet || P.fmtNum(null)),
				h('td', null, P.onlineBadge(v.online)),
				h('td', {class: 'num' + (lowFuel(v) ? ' low' : '')}, P.fmtFuel(v.fuel_pct)),
				h('td', {class: 'num'}, P.fmtKm(v.odometer_km)),
				h('td', null, h('time', {datetime: v.seen_at || null, title: P.fmtTime(v.seen_at)},
					P.fmtAgo(v.seen_at))));
			return tr;
		}

		function lowFuel(v) {
			return P.isNum(v.fuel_pct) && v.fuel_pct <= 15;
		}

		function renderSummary() {
			var online = items.filter(function (v) { return v.online === true; }).length;
			var low = items.filter(lowFuel).length;
			summary.textContent = items.length + (next ? '+' : '') + ' vehicle' +
				(items.length === 1 && !next ? '' : 's') + ' shown \u00b7 ' + online + ' online \u00b7 ' +
				low + ' at or below 15 % fuel' + (next ? ' \u00b7 more on the next page' : '');
		}

		function renderMarkers() {
			Object.keys(markers).forEach(function (vin) {
				if (!byVin[vin] || !P.map.hasPos(byVin[vin])) {
					layer.removeLayer(markers[vin]);
					delete markers[vin];
				}
			});
			items.forEach(function (v) {
				if (!P.map.hasPos(v))
					return;
				if (markers[v.vin])
					P.map.updateMarker(markers[v.vin], v);
				else
					markers[v.vin] = P.map.vehicleMarker(v, function (vin) {
						location.hash = '#/vehicle/' + encodeURIComponent(vin);
					}).addTo(layer);
			});
			if (!fitted && items.length) {
				P.map.fit(map, Object.keys(markers).map(function (k) { return markers[k]; }));
				fitted = true;
			}
		}

		var fetching = {}; /* vin -> 1 while its full record is asked for */
		var unsubscribe = P.api.live.subscribe(function (v) {
			if (!v || !v.vin)
				return;
			if (byVin[v.vin]) {
				v = P.liveMerge(byVin[v.vin], v);
			} else if (v.fleet === null || v.fleet === undefined) {
				/* A car new to this page, fleet not said: its record says. */
				if (fetching[v.vin])
					return;
				fetching[v.vin] = 1;
				P.api.get('/vehicles/' + encodeURIComponent(v.vin)).then(function (full) {
					delete fetching[full.vin];
					if (!gone && matches(full, f)) {
						put(full);
						scheduleRender();
					}
				}, function () { delete fetching[v.vin]; });
				return;
			}
			if (matches(v, f))
				put(v);
			else if (byVin[v.vin])
				remove(v.vin);
			else
				return;
			scheduleRender();
		});
		var ticker = setInterval(function () {
			Array.prototype.forEach.call(tbody.querySelectorAll('time[datetime]'), function (t) {
				t.textContent = P.fmtAgo(t.getAttribute('datetime'));
			});
		}, 30000);
		setTimeout(function () { if (!gone) map.invalidateSize(); }, 0);
		load(null);

		return function () {
			gone = true;
			unsubscribe();
			clearInterval(ticker);
			if (renderTimer)
				clearTimeout(renderTimer);
			map.remove();
		};
	};
})(window.Pitstop);
