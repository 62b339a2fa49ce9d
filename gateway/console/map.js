/*
 * map.js: Leaflet maps without a tile server. Positions and trips are vector
 * layers (SVG), so the map works on an isolated network with nothing behind
 * it; when the gateway serves offline tiles from map_tiles_dir (at
 * /tiles/{z}/{x}/{y}.png, docs/console.md) they are laid underneath. Tooltip
 * content is always a DOM node: Leaflet puts strings in as HTML.
 */
'use strict';
(function (P) {
	var h = P.h;
	var tilesProbe = null;

	/* Resolves to true when the gateway serves tiles (its zoom-0 tile exists). */
	function haveTiles() {
		if (!tilesProbe) {
			tilesProbe = fetch('/tiles/0/0/0.png', {method: 'HEAD', cache: 'no-store'})
				.then(function (r) { return r.ok; }, function () { return false; });
		}
		return tilesProbe;
	}

	var COLORS = {online: '#1a7f37', offline: '#6e7781', unknown: '#9a6700'};
	var TRIP_COLORS = ['#0550ae', '#bc4c00', '#8250df', '#1a7f37', '#cf222e',
		'#116329', '#953800', '#6639ba', '#0a3069', '#82071e'];

	function stateColor(online) {
		return online === true ? COLORS.online : online === false ? COLORS.offline : COLORS.unknown;
	}

	/* A map in el (which CSS gives a height). label: its accessible name. */
	function create(el, label) {
		el.setAttribute('role', 'region');
		el.setAttribute('aria-label', label + ' (arrow keys pan, + and - zoom)');
		/* No zoom animation: Leaflet 1.6 ends one on a timer and throws when
		 * the map was removed meanwhile (leaving a page right after fitting). */
		var map = L.map(el, {zoomSnap: 0.5, worldCopyJump: true, attributionControl: false,
			zoomAnimation: false});
		map.setView([48.14, 11.58], 4);
		L.control.scale({imperial: false}).addTo(map);
		haveTiles().then(function (yes) {
			if (yes) {
				L.tileLayer('/tiles/{z}/{x}/{y}.png', {maxZoom: 19}).addTo(map);
				el.classList.add('has-tiles');
			}
		});
		return map;
	}

	function hasPos(v) {
		return P.isNum(v.lat) && P.isNum(v.lon);
	}

	/* A circle marker for vehicle v; onPick(vin) when clicked. */
	function vehicleMarker(v, onPick) {
		var m = L.circleMarker([v.lat, v.lon], markerStyle(v));
		m.bindTooltip(h('span', null, v.vin));
		if (onPick)
			m.on('click', function () { onPick(v.vin); });
		return m;
	}

	function markerStyle(v) {
		var c = stateColor(v.online);
		return {radius: 7, color: '#fff', weight: 2, fillColor: c, fillOpacity: 0.9};
	}

	/* Moves and recolours marker m to vehicle v's latest state. */
	function updateMarker(m, v) {
		m.setLatLng([v.lat, v.lon]);
		m.setStyle(markerStyle(v));
	}

	/* Zooms map to fit the layers (an array of Leaflet layers); keeps the
	 * view when there is nothing to show. */
	function fit(map, layers) {
		var b = L.latLngBounds([]);
		layers.forEach(function (l) {
			if (l.getBounds)
				b.extend(l.getBounds());
			else if (l.getLatLng)
				b.extend(l.getLatLng());
		});
		if (!b.isValid())
			return;
		if (b.getNorthEast().equals(b.getSouthWest()))
			map.setView(b.getCenter(), 14, {animate: false});
		else
			map.fitBounds(b, {padding: [24, 24], maxZoom: 16, animate: false});
	}

	function tripColor(i) {
		return TRIP_COLORS[i % TRIP_COLORS.length];
	}

	P.map = {create: create, hasPos: hasPos, vehicleMarker: vehicleMarker,
		updateMarker: updateMarker, fit: fit, tripColor: tripColor, stateColor: stateColor};
})(window.Pitstop);
