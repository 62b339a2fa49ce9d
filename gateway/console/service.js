/*
 * service.js: the "Service due" page (#/service): what is due, or comes due
 * within the chosen window, for every vehicle the caller may see, from GET
 * /api/v1/service/due (the gateway's predictions: docs/service-prediction.md).
 */
'use strict';
(function (P) {
	var h = P.h;
	var WINDOWS = {'7': 'next 7 days', '30': 'next 30 days', '90': 'next 90 days', '365': 'next year'};

	function itemName(s) {
		return String(s || '').replace(/_/g, ' ');
	}

	P.pages = P.pages || {};
	P.pages.service = function (main, route, user) {
		var page = h('section', {class: 'service-page', 'aria-labelledby': 'service-title'});
		var gone = false;
		main.appendChild(page);
		page.appendChild(h('h1', {id: 'service-title', tabindex: '-1'}, 'Service due'));
		if (user.role === 'service_advisor') {
			page.appendChild(P.notice('empty', 'No vehicle data for your role yet',
				'Service advisors cannot see vehicles in this version of Pitstop.'));
			return null;
		}
		var within = WINDOWS[route.query.within] ? route.query.within : '30';
		var sel = h('select', {id: 'service-within'}, Object.keys(WINDOWS).map(function (k) {
			return h('option', {value: k, selected: k === within}, WINDOWS[k]);
		}));
		var status = h('div', {class: 'status', id: 'service-status'});
		page.appendChild(h('form', {class: 'filters', onsubmit: function (e) { e.preventDefault(); }},
			h('label', {for: 'service-within'}, 'Due within ', sel)));
		page.appendChild(status);
		sel.addEventListener('change', function () {
			location.hash = '#/service?within=' + sel.value;
		});

		status.appendChild(h('p', {class: 'loading'}, 'Loading predictions\u2026'));
		P.api.get('/service/due', {within_days: within}).then(function (r) {
			if (gone)
				return;
			P.clear(status);
			var items = r.items || [];
			if (!items.length) {
				var n = P.notice('empty', 'Nothing due',
					'No service item of your vehicles is due within the ' + WINDOWS[within] + '.');
				n.id = 'service-empty';
				status.appendChild(n);
				return;
			}
			var body = h('tbody', {id: 'service-rows'});
			items.forEach(function (x) {
				var overdue = x.due_date <= r.as_of;
				body.appendChild(h('tr', {'data-vin': x.vin, 'data-item': x.item},
					h('th', {scope: 'row'}, h('a', {href: '#/vehicle/' + encodeURIComponent(x.vin)},
						h('code', null, x.vin))),
					h('td', null, itemName(x.item)),
					h('td', null, h('time', {datetime: x.due_date}, x.due_date)),
					h('td', {class: 'num'}, P.fmtKm(x.due_odometer_km)),
					h('td', null, x.reason === 'distance' ? 'distance' : 'time'),
					h('td', null, h('span', {class: 'badge ' + (overdue ? 'badge-offline' : 'badge-online')},
						overdue ? 'due now' : 'coming due'))));
			});
			status.appendChild(h('p', {class: 'summary', id: 'service-summary'},
				items.length + ' item' + (items.length === 1 ? '' : 's') + ' due by ' +
				'the ' + WINDOWS[within] + ' (as of ' + r.as_of + ')'));
			status.appendChild(h('div', {class: 'table-wrap'}, h('table', {class: 'data', id: 'service-table'},
				h('thead', null, h('tr', null, ['Vehicle', 'Item', 'Due', 'At odometer', 'Reason',
					'State'].map(function (x, i) {
					return h('th', {scope: 'col', class: i === 3 ? 'num' : null}, x);
				}))), body)));
			if (r.truncated)
				status.appendChild(h('p', {class: 'note'}, 'Only the first 10,000 vehicles are listed.'));
		}, function (e) {
			if (gone || e.status === 401)
				return;
			P.clear(status);
			status.appendChild(P.notice('error', e.status === 503 ? 'No predictions' :
				'Cannot load the predictions', e.message));
		});
		return function () { gone = true; };
	};
})(window.Pitstop);
