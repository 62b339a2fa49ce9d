/*
 * vehicle.js: one vehicle (#/vehicle/<VIN>): its latest state (kept current
 * by the live stream), odometer and fuel charts from the daily rollups
 * (/days), the last trips on the map (/trips) and the offers sent to it
 * (/offers). A VIN the caller may not see gets the same "not found" as one
 * that does not exist: the API answers 404 for both and the page shows
 * nothing of the car.
 */
'use strict';
(function (P) {
	var h = P.h;
	var RANGES = {7: 'last 7 days', 30: 'last 30 days', 90: 'last 90 days'};
	var TRIPS = 10;

	/* Every UTC day from..to (YYYY-MM-DD) with its rollup or null, so the
	 * charts show days without data as gaps. */
	function dayRows(from, to, items) {
		var byDay = {};
		(items || []).forEach(function (d) { byDay[d.day] = d; });
		var out = [];
		for (var t = Date.parse(from + 'T00:00:00Z'); t <= Date.parse(to + 'T00:00:00Z'); t += 86400e3) {
			var day = P.isoDay(new Date(t));
			out.push({day: day, d: byDay[day] || null});
		}
		return out;
	}

	function val(d, k) {
		return d && P.isNum(d[k]) ? d[k] : null;
	}

	P.pages = P.pages || {};
	P.pages.vehicle = function (main, route, user) {
		var vin = route.arg;
		var gone = false;
		var charts = [];
		var map = null;
		var unsubscribe = null;
		var page = h('section', {class: 'vehicle-page', 'aria-labelledby': 'vehicle-title'});
		main.appendChild(page);
		var title = h('h1', {id: 'vehicle-title', tabindex: '-1'}, 'Vehicle ', h('span', {class: 'vin'}, vin));
		page.appendChild(h('p', {class: 'crumbs'}, h('a', {href: '#/fleet'}, '\u2190 Fleet')));
		page.appendChild(title);

		if (user.role === 'service_advisor') {
			page.appendChild(P.notice('empty', 'No vehicle data for your role yet',
				'Service advisors cannot see vehicles in this version of Pitstop.'));
			page.lastChild.id = 'no-vehicle-data';
			return null;
		}
		var status = h('div', {class: 'status', id: 'vehicle-status'},
			h('p', {class: 'loading'}, 'Loading\u2026'));
		page.appendChild(status);

		P.api.get('/vehicles/' + encodeURIComponent(vin)).then(function (v) {
			if (!gone)
				show(v);
		}, function (e) {
			if (gone || e.status === 401)
				return;
			P.clear(status);
			if (e.status === 404) {
				document.title = 'Not found \u2014 Pitstop';
				var n = P.notice('empty', 'Vehicle not found',
					'There is no vehicle ' + vin + ' among the vehicles you may see.');
				n.id = 'vehicle-not-found';
				status.appendChild(n);
			} else {
				status.appendChild(P.notice('error', 'Cannot load the vehicle', e.message));
			}
		});

		function show(v) {
			P.clear(status);
			document.title = v.vin + ' \u2014 Pitstop';
			var facts = h('dl', {class: 'facts', id: 'vehicle-facts'});
			var mapEl = h('div', {class: 'map', id: 'vehicle-map'});
			var trips = h('div', {class: 'trips', id: 'vehicle-trips'});
			var range = h('select', {id: 'days-range'}, Object.keys(RANGES).map(function (k) {
				return h('option', {value: k, selected: k === '30'}, RANGES[k]);
			}));
			var chartsEl = h('div', {class: 'charts', id: 'vehicle-charts'});
			var offers = h('div', {id: 'vehicle-offers'});
			page.appendChild(facts);
			page.appendChild(h('div', {class: 'vehicle-grid'},
				h('section', {class: 'panel', 'aria-labelledby': 'trips-title'},
					h('h2', {id: 'trips-title'}, 'Last trips'),
					h('div', {class: 'map-wrap'}, mapEl), trips),
				h('section', {class: 'panel', 'aria-labelledby': 'days-title'},
					h('div', {class: 'panel-head'}, h('h2', {id: 'days-title'}, 'Odometer and fuel'),
						h('label', {for: 'days-range', class: 'inline'}, 'Period ', range)),
					chartsEl)));
			page.appendChild(h('section', {class: 'panel', 'aria-labelledby': 'offers-title'},
				h('h2', {id: 'offers-title'}, 'Offers sent'), offers));

			var state = v;
			renderFacts(facts, v);
			map = P.map.create(mapEl, 'Map of the last trips');
			var here = null;
			function placeHere(x) {
				if (!P.map.hasPos(x))
					return;
				if (here)
					P.map.updateMarker(here, x);
				else
					here = P.map.vehicleMarker(x).addTo(map);
			}
			placeHere(v);
			setTimeout(function () { if (map) map.invalidateSize(); }, 0);
			loadTrips(trips, function (layers) {
				P.map.fit(map, layers.length ? layers : here ? [here] : []);
			});
			loadDays(chartsEl, range.value);
			range.addEventListener('change', function () { loadDays(chartsEl, range.value); });
			loadOffers(offers);

			unsubscribe = P.api.live.subscribe(function (x) {
				if (!x || x.vin !== vin || gone)
					return;
				state = P.liveMerge(state, x);
				renderFacts(facts, state);
				placeHere(state);
			});
		}

		function renderFacts(dl, v) {
			P.clear(dl);
			function fact(label, value, id) {
				dl.appendChild(h('div', {class: 'fact', id: id || null}, h('dt', null, label), h('dd', null, value)));
			}
			fact('State', P.onlineBadge(v.online), 'fact-state');
			fact('Fleet', v.fleet || 'none', 'fact-fleet');
			fact('Fuel', P.fmtFuel(v.fuel_pct), 'fact-fuel');
			fact('Odometer', P.fmtKm(v.odometer_km), 'fact-odometer');
			fact('Speed', P.fmtNum(v.speed_kmh, 0, 'km/h'));
			fact('Position', P.map.hasPos(v) ? v.lat.toFixed(5) + ', ' + v.lon.toFixed(5) : P.fmtNum(null));
			fact('Last seen', h('time', {datetime: v.seen_at || null, title: P.fmtTime(v.seen_at)},
				P.fmtAgo(v.seen_at)), 'fact-seen');
			fact('Latest sample', P.fmtTime(v.updated_at));
			var ns = v.next_service;
			fact('Next service', ns ? (ns.item.replace(/_/g, ' ') + ': ' + ns.due_date +
				(ns.due_odometer_km !== null && ns.due_odometer_km !== undefined ?
					' or at ' + P.fmtKm(ns.due_odometer_km) : '') +
				(ns.is_service_due ? ' (due now)' : '')) : 'not predicted', 'fact-service');
		}

		function loadTrips(el, done) {
			el.appendChild(h('p', {class: 'loading'}, 'Loading trips\u2026'));
			P.api.get('/vehicles/' + encodeURIComponent(vin) + '/trips', {limit: TRIPS}).then(function (r) {
				if (gone)
					return;
				P.clear(el);
				var items = r.items || [];
				if (!items.length) {
					el.appendChild(h('p', {class: 'empty'}, 'No trips in the stored history.'));
					done([]);
					return;
				}
				var lines = [];
				var list = h('ol', {class: 'trip-list', id: 'trip-list'});
				var selected = null;
				items.forEach(function (t, i) {
					var pts = (t.points || []).filter(function (p) {
						return Array.isArray(p) && P.isNum(p[0]) && P.isNum(p[1]);
					});
					var color = P.map.tripColor(i);
					var line = pts.length ? L.polyline(pts, {color: color, weight: 4, opacity: 0.8}).addTo(map) : null;
					if (line) {
						line.bindTooltip(h('span', null, tripLabel(t)), {sticky: true});
						lines.push(line);
					}
					var swatch = h('span', {class: 'swatch', 'aria-hidden': 'true'});
					swatch.style.backgroundColor = color; /* CSSOM: allowed by the CSP */
					var btn = h('button', {type: 'button', class: 'trip', 'aria-pressed': 'false',
						disabled: !line}, swatch, tripLabel(t));
					btn.addEventListener('click', function () {
						if (selected) {
							selected.btn.setAttribute('aria-pressed', 'false');
							selected.line.setStyle({weight: 4, opacity: 0.8});
						}
						if (selected && selected.btn === btn) {
							selected = null;
							P.map.fit(map, lines);
							return;
						}
						selected = {btn: btn, line: line};
						btn.setAttribute('aria-pressed', 'true');
						line.setStyle({weight: 7, opacity: 1});
						line.bringToFront();
						P.map.fit(map, [line]);
					});
					list.appendChild(h('li', null, btn));
				});
				el.appendChild(list);
				if (r.truncated)
					el.appendChild(h('p', {class: 'note'}, 'The last ' + items.length +
						' trips; older ones are not shown.'));
				done(lines);
			}, function (e) {
				if (gone || e.status === 401)
					return;
				P.clear(el);
				el.appendChild(P.notice('error', 'Cannot load the trips', e.message));
				done([]);
			});
		}

		function tripLabel(t) {
			var start = new Date(t.start), end = new Date(t.end);
			var endText = isNaN(end.getTime()) ? '' : '\u2013' + end.toLocaleTimeString(undefined,
				{hour: '2-digit', minute: '2-digit'});
			return P.fmtTime(t.start) + endText + ' \u00b7 ' + P.fmtKm(t.distance_km) +
				(isNaN(start.getTime()) || isNaN(end.getTime()) ? '' :
					' \u00b7 ' + P.fmtDuration((end - start) / 1000));
		}

		function loadDays(el, n) {
			charts.forEach(function (c) { c.destroy(); });
			charts = [];
			P.clear(el);
			el.appendChild(h('p', {class: 'loading'}, 'Loading daily figures\u2026'));
			var to = P.isoDay(new Date());
			var from = P.isoDay(new Date(Date.now() - (parseInt(n, 10) - 1) * 86400e3));
			P.api.get('/vehicles/' + encodeURIComponent(vin) + '/days', {from: from, to: to}).then(function (r) {
				if (gone)
					return;
				P.clear(el);
				var rows = dayRows(from, to, r.items);
				if (!(r.items || []).length) {
					el.appendChild(h('p', {class: 'empty', id: 'days-empty'}, 'No data in this period.'));
					return;
				}
				el.appendChild(chartBox('chart-odometer', 'Odometer at the end of each day (km)'));
				el.appendChild(chartBox('chart-fuel', 'Fuel per day (%): level at the end of the day, used and refuelled'));
				el.appendChild(daysTable(rows));
				if (r.truncated)
					el.appendChild(h('p', {class: 'note'}, 'The gateway sent only part of this ' +
						'period: ' + r.items.length + ' days.'));
				drawCharts(rows);
			}, function (e) {
				if (gone || e.status === 401)
					return;
				P.clear(el);
				el.appendChild(P.notice('error', 'Cannot load the daily figures', e.message));
			});
		}

		function chartBox(id, label) {
			return h('figure', {class: 'chart'},
				h('figcaption', null, label),
				h('div', {class: 'chart-canvas'}, h('canvas', {id: id, role: 'img',
					'aria-label': label + '; the figures are in the table below'})));
		}

		function drawCharts(rows) {
			var labels = rows.map(function (r) { return r.day.slice(5); });
			var common = {
				animation: false, responsive: true, maintainAspectRatio: false,
				interaction: {mode: 'index', intersect: false},
				plugins: {legend: {position: 'bottom'}}
			};
			charts.push(new Chart(document.getElementById('chart-odometer'), {
				type: 'line',
				data: {labels: labels, datasets: [{
					label: 'odometer (km)', borderColor: '#0550ae', backgroundColor: '#0550ae',
					spanGaps: true, tension: 0,
					data: rows.map(function (r) { return val(r.d, 'last_odometer_km'); })
				}]},
				options: Object.assign({}, common, {scales: {y: {title: {display: true, text: 'km'}}}})
			}));
			charts.push(new Chart(document.getElementById('chart-fuel'), {
				type: 'bar',
				data: {labels: labels, datasets: [
					{type: 'line', label: 'level at day end (%)', borderColor: '#bc4c00',
						backgroundColor: '#bc4c00', spanGaps: true, tension: 0,
						data: rows.map(function (r) { return val(r.d, 'last_fuel_pct'); })},
					{label: 'used (%)', backgroundColor: '#cf222e99',
						data: rows.map(function (r) { return val(r.d, 'fuel_used_pct'); })},
					{label: 'refuelled (%)', backgroundColor: '#1a7f3799',
						data: rows.map(function (r) { return val(r.d, 'refuelled_pct'); })}
				]},
				options: Object.assign({}, common, {scales: {y: {min: 0, max: 100,
					title: {display: true, text: '%'}}}})
			}));
		}

		function daysTable(rows) {
			var body = h('tbody');
			rows.filter(function (r) { return r.d; }).reverse().forEach(function (r) {
				var d = r.d;
				body.appendChild(h('tr', null,
					h('th', {scope: 'row'}, d.day),
					h('td', {class: 'num'}, P.fmtKm(d.distance_km)),
					h('td', {class: 'num'}, P.fmtKm(d.last_odometer_km)),
					h('td', {class: 'num'}, P.fmtDuration(d.driving_s)),
					h('td', {class: 'num'}, P.fmtFuel(d.last_fuel_pct)),
					h('td', {class: 'num'}, P.fmtFuel(d.fuel_used_pct)),
					h('td', {class: 'num'}, P.fmtFuel(d.refuelled_pct)),
					h('td', {class: 'num'}, P.fmtNum(d.samples, 0))));
			});
			return h('details', {class: 'days-table'},
				h('summary', null, 'Daily figures as a table'),
				h('div', {class: 'table-wrap'}, h('table', {class: 'data', id: 'days-table'},
					h('thead', null, h('tr', null, ['Day (UTC)', 'Distance', 'Odometer', 'Driving',
						'Fuel at end', 'Fuel used', 'Refuelled', 'Samples'].map(function (x, i) {
						return h('th', {scope: 'col', class: i ? 'num' : null}, x);
					}))), body)));
		}

		function loadOffers(el) {
			el.appendChild(h('p', {class: 'loading'}, 'Loading offers\u2026'));
			P.api.get('/vehicles/' + encodeURIComponent(vin) + '/offers').then(function (r) {
				if (gone)
					return;
				P.clear(el);
				var items = r.items || [];
				if (!items.length) {
					el.appendChild(h('p', {class: 'empty', id: 'offers-empty'}, 'No offers sent to this vehicle.'));
					return;
				}
				var body = h('tbody');
				items.forEach(function (o) {
					body.appendChild(h('tr', {'data-offer': o.id},
						h('th', {scope: 'row'}, o.title || o.kind),
						h('td', null, o.kind),
						h('td', null, h('code', null, o.promo_code || P.fmtNum(null))),
						h('td', null, h('span', {class: 'badge badge-offer-' + String(o.state).replace(/[^a-z_]/g, '')},
							String(o.state || 'unknown').replace(/_/g, ' '))),
						h('td', null, P.fmtTime(o.created_at)),
						h('td', null, P.fmtTime(o.valid_from) + ' \u2013 ' + P.fmtTime(o.valid_until))));
				});
				el.appendChild(h('div', {class: 'table-wrap'}, h('table', {class: 'data', id: 'offers-table'},
					h('thead', null, h('tr', null, ['Offer', 'Kind', 'Promo code', 'State', 'Sent',
						'Valid'].map(function (x) { return h('th', {scope: 'col'}, x); }))), body)));
				if (r.truncated)
					el.appendChild(h('p', {class: 'note'}, 'The newest ' + items.length +
						' offers; older ones are not listed.'));
			}, function (e) {
				if (gone || e.status === 401)
					return;
				P.clear(el);
				el.appendChild(P.notice('error', 'Cannot load the offers', e.message));
			});
		}

		return function () {
			gone = true;
			if (unsubscribe)
				unsubscribe();
			charts.forEach(function (c) { c.destroy(); });
			if (map)
				map.remove();
			map = null;
		};
	};
})(window.Pitstop);
