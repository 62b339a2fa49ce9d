/*
 * api.js: the console's only way to the gateway's HTTP API (/api/v1) and its
 * live stream. Requests carry the Bearer token kept in sessionStorage (writes
 * need it; GETs would also pass on the HttpOnly session cookie, which the
 * live stream relies on). Every error
 * becomes an ApiError with the HTTP status and the API's error code; a 401
 * anywhere means the session is gone and sends the user to the login page.
 */
'use strict';
(function (P) {
	var TOKEN_KEY = 'pitstop_token';
	var USER_KEY = 'pitstop_user';

	function ApiError(status, code, message) {
		this.status = status;
		this.code = code;
		this.message = message;
	}
	ApiError.prototype = Object.create(Error.prototype);
	ApiError.prototype.name = 'ApiError';

	function token() {
		return sessionStorage.getItem(TOKEN_KEY);
	}

	/* The user of this tab's session, as the login or /me returned it. */
	function user() {
		try {
			return JSON.parse(sessionStorage.getItem(USER_KEY) || 'null');
		} catch (e) {
			return null;
		}
	}

	function setSession(tok, u) {
		if (tok)
			sessionStorage.setItem(TOKEN_KEY, tok);
		if (u)
			sessionStorage.setItem(USER_KEY, JSON.stringify(u));
	}

	function dropSession() {
		sessionStorage.removeItem(TOKEN_KEY);
		sessionStorage.removeItem(USER_KEY);
	}

	/* path plus a query string of params' non-empty values. */
	function url(path, params) {
		var q = [];
		Object.keys(params || {}).forEach(function (k) {
			var v = params[k];
			if (v !== null && v !== undefined && v !== '')
				q.push(encodeURIComponent(k) + '=' + encodeURIComponent(v));
		});
		return '/api/v1' + path + (q.length ? '?' + q.join('&') : '');
	}

	/* Resolves to the parsed JSON body (null for 204), rejects with an
	 * ApiError. opts.noAuthRedirect: a 401 is only reported (the login form). */
	function request(method, path, opts) {
		opts = opts || {};
		var headers = {'Accept': 'application/json'};
		var tok = token();
		if (tok)
			headers['Authorization'] = 'Bearer ' + tok;
		var init = {method: method, headers: headers, credentials: 'same-origin', cache: 'no-store'};
		if (opts.body !== undefined) {
			headers['Content-Type'] = 'application/json';
			init.body = JSON.stringify(opts.body);
		}
		return fetch(url(path, opts.params), init).then(function (r) {
			if (r.status === 204)
				return null;
			return r.text().then(function (text) {
				var body = null;
				try {
					body = text ? JSON.parse(text) : null;
				} catch (e) {
					body = null;
				}
				if (r.ok) {
					if (body === null)
						throw new ApiError(r.status, 'bad_response', 'the gateway sent no JSON');
					return body;
				}
				var err = body && body.error ? body.error : {};
				var e = new ApiError(r.status, err.code || 'http_' + r.status,
					err.message || r.statusText || 'HTTP ' + r.status);
				if (r.status === 401 && !opts.noAuthRedirect) {
					dropSession();
					if (P.onUnauthorized)
						P.onUnauthorized();
				}
				throw e;
			});
		}, function (e) {
			throw new ApiError(0, 'network', 'the gateway cannot be reached (' + e.message + ')');
		});
	}

	function get(path, params) {
		return request('GET', path, {params: params});
	}

	function login(username, password) {
		return request('POST', '/login', {
			body: {username: username, password: password}, noAuthRedirect: true
		}).then(function (r) {
			setSession(r.token, r.user);
			return r.user;
		});
	}

	function logout() {
		return request('POST', '/logout', {noAuthRedirect: true}).catch(function () {
			return null; /* gone already: nothing left to end */
		}).then(function () {
			dropSession();
			live.stop();
		});
	}

	/* Checks this tab's session with /me; resolves to the user or null when
	 * there is none. A tab without a token counts as logged out even when
	 * the browser still holds a session cookie from another tab: logging
	 * out needs the token (writes do), and a session that could not be
	 * ended from here is not one to use. */
	function me() {
		if (!token())
			return Promise.resolve(null);
		return request('GET', '/me', {noAuthRedirect: true}).then(function (u) {
			setSession(null, u);
			return u;
		}, function (e) {
			if (e.status === 401) {
				dropSession();
				return null;
			}
			throw e;
		});
	}

	/*
	 * live: one EventSource on /api/v1/events for the whole tab (it
	 * authenticates by the session cookie). Pages subscribe to `vehicle`
	 * events and unsubscribe when they are left; the stream stays open
	 * between pages. EventSource reconnects by itself after a network error;
	 * when it gives up (readyState CLOSED, e.g. a 401) the session is checked
	 * and the stream reopened once it is valid.
	 */
	var live = (function () {
		var es = null;
		var subs = [];
		var statusFn = null;
		var retry = null;

		function status(s) {
			if (statusFn)
				statusFn(s);
		}

		function start() {
			if (es || typeof EventSource === 'undefined')
				return;
			es = new EventSource('/api/v1/events');
			status('connecting');
			es.addEventListener('open', function () { status('live'); });
			es.addEventListener('vehicle', function (ev) {
				var v;
				try {
					v = JSON.parse(ev.data);
				} catch (e) {
					return;
				}
				subs.slice().forEach(function (fn) { fn(v); });
			});
			es.addEventListener('error', function () {
				if (!es)
					return;
				if (es.readyState === EventSource.CLOSED) {
					es = null;
					status('offline');
					retry = setTimeout(function () {
						retry = null;
						me().then(function (u) {
							if (u)
								start();
							else if (P.onUnauthorized)
								P.onUnauthorized();
						}, function () { retry = setTimeout(start, 10000); });
					}, 5000);
				} else {
					status('reconnecting');
				}
			});
		}

		function stop() {
			if (retry)
				clearTimeout(retry);
			retry = null;
			if (es)
				es.close();
			es = null;
			subs = [];
			status('off');
		}

		function subscribe(fn) {
			subs.push(fn);
			start();
			return function () {
				subs = subs.filter(function (x) { return x !== fn; });
			};
		}

		return {start: start, stop: stop, subscribe: subscribe,
			onStatus: function (fn) { statusFn = fn; }};
	})();

	P.ApiError = ApiError;
	P.api = {get: get, request: request, login: login, logout: logout, me: me,
		user: user, dropSession: dropSession, live: live};
})(window.Pitstop);
