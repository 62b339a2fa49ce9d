/*
 * login.js: the login page (#/login). Sends the credentials to POST
 * /api/v1/login, keeps the token for this tab (sessionStorage) and goes on
 * to the page the user wanted, or the fleet.
 */
'use strict';
(function (P) {
	var h = P.h;

	P.pages = P.pages || {};
	P.pages.login = function (main, route) {
		var err = h('div', {id: 'login-error', class: 'form-error', role: 'alert'});
		var user = h('input', {id: 'username', name: 'username', type: 'text', required: true,
			autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false'});
		var pass = h('input', {id: 'password', name: 'password', type: 'password', required: true,
			autocomplete: 'current-password'});
		var submit = h('button', {type: 'submit', id: 'login-submit'}, 'Log in');
		var form = h('form', {class: 'login', id: 'login-form', 'aria-describedby': 'login-error'},
			h('h1', {tabindex: '-1'}, 'Log in to Pitstop'),
			route.reason ? h('p', {class: 'form-note'}, route.reason) : null,
			h('label', {for: 'username'}, 'User name'), user,
			h('label', {for: 'password'}, 'Password'), pass,
			submit, err);
		form.addEventListener('submit', function (ev) {
			ev.preventDefault();
			P.clear(err);
			submit.disabled = true;
			P.api.login(user.value.trim(), pass.value).then(function (u) {
				P.app.loggedIn(u);
			}, function (e) {
				submit.disabled = false;
				pass.value = '';
				err.textContent = e.status === 401 ? 'Wrong user name or password.' :
					'Cannot log in: ' + e.message;
				pass.focus();
			});
		});
		main.appendChild(h('section', {class: 'login-page'}, form));
		user.focus();
	};
})(window.Pitstop);
