/*
 * campaigns.js: the "Campaigns" page (#/campaigns?days=N): one card per
 * promotion rule with its funnel, created -> sent -> delivered -> shown ->
 * accepted -> redeemed, as a bar chart (Chart.js) and as numbers, with the
 * conversion rate (redeemed / sent) and the acceptance rate (accepted /
 * shown), from GET /api/v1/offers/stats, and under it the rule's partner
 * stations (the top STATIONS_MAX by offers sent) from GET
 * /api/v1/offers/stats?by=station (docs/offers.md: each offer counts once
 * per stage it reached; the period selects the offers created on those UTC
 * days). The figures are the operator's; other roles get a notice.
 */
'use strict';
(function (P) {
	var h = P.h;
	var PERIODS = {'all': 'all time', '7': 'last 7 days', '30': 'last 30 days', '90': 'last 90 days'};
	var FUNNEL = ['created', 'sent', 'delivered', 'shown', 'accepted', 'redeemed'];
	var OTHER = ['dismissed', 'rejected', 'expired'];
	var COLORS = ['#57606a', '#0550ae', '#0a7ea4', '#1a7f37', '#bc4c00', '#8250df'];
	var STATIONS_MAX = 10;
	var STATION_COLS = ['sent', 'shown', 'accepted', 'redeemed'];

	function pct(x) {
		return P.isNum(x) ? P.fmtNum(x * 100, 1) + ' %' : '\u2014';
	}

	/* A card's element id for rule (ids stay valid whatever the name). */
	function cardId(i) {
		return 'campaign-' + i;
	}

	function figures(s) {
		var rows = FUNNEL.concat(OTHER).map(function (k) {
			return h('div', {class: 'fact', 'data-stage': k}, h('dt', null, k),
				h('dd', {class: 'num'}, P.fmtNum(s[k], 0)));
		});
		rows.push(h('div', {class: 'fact', 'data-stage': 'conversion_rate'},
			h('dt', {title: 'redeemed / sent'}, 'conversion'), h('dd', {class: 'num'}, pct(s.conversion_rate))));
		rows.push(h('div', {class: 'fact', 'data-stage': 'acceptance_rate'},
			h('dt', {title: 'accepted / shown'}, 'acceptance'), h('dd', {class: 'num'}, pct(s.acceptance_rate))));
		return [h('dl', {class: 'facts campaign-figures'}, rows),
			h('p', {class: 'note'}, 'Conversion: redeemed / sent; acceptance: accepted / shown. ' +
				'Each offer counts once per stage it reached.')];
	}

	/*
	 * The table of a rule's stations (rows: the API's, most sent first), at
	 * most STATIONS_MAX; a note when its offers name no station.
	 */
	function stations(i, rows) {
		var id = cardId(i) + '-stations';
		if (!rows.length)
			return h('p', {class: 'note stations-none', id: id}, 'No offer of this rule names a station.');
		var shown = rows.slice(0, STATIONS_MAX);
		var body = h('tbody', null, shown.map(function (x) {
			return h('tr', {'data-poi': x.poi_id},
				h('th', {scope: 'row', title: x.poi_id}, x.poi_name || x.poi_id),
				STATION_COLS.map(function (k) {
					return h('td', {class: 'num', 'data-stage': k}, P.fmtNum(x[k], 0));
				}),
				h('td', {class: 'num', 'data-stage': 'conversion_rate'}, pct(x.conversion_rate)));
		}));
		var caption = 'Stations' + (rows.length > shown.length ?
			' (the ' + shown.length + ' with the most offers sent of ' + rows.length + ')' : '');
		return h('div', {class: 'table-wrap'}, h('table', {class: 'data campaign-stations', id: id},
			h('caption', null, caption),
			h('thead', null, h('tr', null, ['Station'].concat(STATION_COLS).map(function (x, k) {
				return h('th', {scope: 'col', class: k ? 'num' : null}, x);
			}).concat(h('th', {scope: 'col', class: 'num'},
				h('abbr', {title: 'conversion: redeemed / sent'}, 'conv.'))))), body));
	}

	P.pages = P.pages || {};
	P.pages.campaigns = function (main, route, user) {
		var page = h('section', {class: 'campaigns-page', 'aria-labelledby': 'campaigns-title'});
		var charts = [];
		var gone = false;
		main.appendChild(page);
		page.appendChild(h('h1', {id: 'campaigns-title', tabindex: '-1'}, 'Campaigns'));
		if (user.role !== 'operator') {
			var n = P.notice('empty', 'Campaign figures are for operators',
				'Ask an operator for the promotion statistics.');
			n.id = 'campaigns-forbidden';
			page.appendChild(n);
			return null;
		}
		var days = PERIODS[route.query.days] ? route.query.days : 'all';
		var sel = h('select', {id: 'campaigns-days'}, Object.keys(PERIODS).map(function (k) {
			return h('option', {value: k, selected: k === days}, PERIODS[k]);
		}));
		var status = h('div', {class: 'status', id: 'campaigns-status'});
		page.appendChild(h('form', {class: 'filters', onsubmit: function (e) { e.preventDefault(); }},
			h('label', {for: 'campaigns-days'}, 'Offers created ', sel)));
		page.appendChild(status);
		sel.addEventListener('change', function () {
			location.hash = '#/campaigns?days=' + sel.value;
		});

		var params = {};
		if (days !== 'all')
			params.since = P.isoDay(new Date(Date.now() - (Number(days) - 1) * 86400000));
		status.appendChild(h('p', {class: 'loading'}, 'Loading the figures\u2026'));
		var byStation = Object.assign({by: 'station'}, params);
		Promise.all([P.api.get('/offers/stats', params), P.api.get('/offers/stats', byStation)]).then(function (both) {
			if (gone)
				return;
			P.clear(status);
			var r = both[0];
			var items = r.items || [];
			var perRule = {};
			(both[1].items || []).forEach(function (x) {
				(perRule[x.rule] = perRule[x.rule] || []).push(x);
			});
			if (!items.length) {
				var n = P.notice('empty', 'No offers yet',
					'No rule issued an offer in ' + PERIODS[days] + '.');
				n.id = 'campaigns-empty';
				status.appendChild(n);
				return;
			}
			status.appendChild(h('p', {class: 'summary', id: 'campaigns-summary'},
				items.length + ' rule' + (items.length === 1 ? '' : 's') + ', ' +
				P.fmtNum(r.total.sent, 0) + (r.total.sent === 1 ? ' offer' : ' offers') + ' sent, ' +
				P.fmtNum(r.total.redeemed, 0) +
				' redeemed (' + pct(r.total.conversion_rate) + ')'));
			var grid = h('div', {class: 'campaign-cards', id: 'campaign-cards'});
			status.appendChild(grid);
			items.forEach(function (s, i) {
				var label = 'Funnel of ' + s.rule + '; the figures are next to it';
				var canvas = h('canvas', {id: cardId(i) + '-chart', role: 'img', 'aria-label': label});
				grid.appendChild(h('article', {class: 'campaign-card', id: cardId(i), 'data-rule': s.rule,
					'aria-labelledby': cardId(i) + '-title'},
					h('h2', {id: cardId(i) + '-title'}, s.rule),
					h('figure', {class: 'chart'}, h('div', {class: 'chart-canvas'}, canvas)),
					figures(s), stations(i, perRule[s.rule] || [])));
				charts.push(new Chart(canvas, {
					type: 'bar',
					data: {labels: FUNNEL, datasets: [{label: 'offers', backgroundColor: COLORS,
						data: FUNNEL.map(function (k) { return s[k]; })}]},
					options: {animation: false, responsive: true, maintainAspectRatio: false,
						plugins: {legend: {display: false}},
						scales: {y: {beginAtZero: true, ticks: {precision: 0}}}}
				}));
			});
			if (r.truncated)
				status.appendChild(h('p', {class: 'note'}, 'Only the first 1,000 rules are shown.'));
			if (both[1].truncated)
				status.appendChild(h('p', {class: 'note'}, 'Only the first 10,000 rule and station pairs are listed under the cards.'));
		}, function (e) {
			if (gone || e.status === 401)
				return;
			P.clear(status);
			status.appendChild(P.notice('error', 'Cannot load the figures', e.message));
		});
		return function () {
			gone = true;
			charts.forEach(function (c) { c.destroy(); });
		};
	};
})(window.Pitstop);
