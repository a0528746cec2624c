// Passkeys in the browser (issue 18): register one on the account page, sign a decision with
// one on a change page. The server sends WebAuthn options as JSON (py_webauthn's
// options_to_json: binary values base64url); the browser's API wants ArrayBuffers, and the
// credential it returns goes back as JSON in the shape py_webauthn parses.
// No inline script (the Content-Security-Policy forbids it): pages mark their controls with
// data- attributes and this file finds them.
(function () {
  "use strict";

  // -- base64url <-> ArrayBuffer ---------------------------------------------------------------

  function fromBase64url(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) {
      base64 += "=";
    }
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) {
      bytes[i] = binary.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    if (!buffer) {
      return null;
    }
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) {
      binary += String.fromCharCode(bytes[i]);
    }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (d) {
      var out = { type: d.type || "public-key", id: fromBase64url(d.id) };
      if (d.transports) {
        out.transports = d.transports;
      }
      return out;
    });
  }

  function creationOptions(options) {
    var publicKey = Object.assign({}, options);
    publicKey.challenge = fromBase64url(options.challenge);
    publicKey.user = Object.assign({}, options.user, { id: fromBase64url(options.user.id) });
    publicKey.excludeCredentials = descriptors(options.excludeCredentials);
    return publicKey;
  }

  function requestOptions(options) {
    var publicKey = Object.assign({}, options);
    publicKey.challenge = fromBase64url(options.challenge);
    publicKey.allowCredentials = descriptors(options.allowCredentials);
    return publicKey;
  }

  // -- the credential, as JSON --------------------------------------------------------------------

  function credentialJSON(credential) {
    var response = credential.response;
    var out = {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      response: { clientDataJSON: toBase64url(response.clientDataJSON) },
      clientExtensionResults: credential.getClientExtensionResults
        ? credential.getClientExtensionResults()
        : {},
      authenticatorAttachment: credential.authenticatorAttachment || null,
    };
    if (response.attestationObject) {
      // A new credential (navigator.credentials.create).
      out.response.attestationObject = toBase64url(response.attestationObject);
      out.response.transports = response.getTransports ? response.getTransports() : [];
    } else {
      // An assertion (navigator.credentials.get).
      out.response.authenticatorData = toBase64url(response.authenticatorData);
      out.response.signature = toBase64url(response.signature);
      out.response.userHandle = toBase64url(response.userHandle);
    }
    return out;
  }

  // -- talking to the server ---------------------------------------------------------------------

  function csrfToken(scope) {
    var input =
      scope.querySelector("input[name=csrfmiddlewaretoken]") ||
      document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  // POST JSON with the session; resolves to the body, or rejects with the server's words.
  function postJSON(url, body, scope) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRFToken": csrfToken(scope),
      },
      body: JSON.stringify(body),
    }).then(function (response) {
      return response
        .json()
        .catch(function () {
          return { detail: "The server answered " + response.status + "." };
        })
        .then(function (data) {
          if (!response.ok) {
            var error = new Error(data.detail || "The server answered " + response.status + ".");
            error.field = data.field;
            throw error;
          }
          return data;
        });
    });
  }

  // What went wrong in the browser's own ceremony, in words a person can act on.
  function ceremonyMessage(error) {
    if (!error) {
      return "Something went wrong.";
    }
    if (error.name === "NotAllowedError") {
      return "The passkey was not used (cancelled, or it timed out). Nothing was recorded.";
    }
    if (error.name === "InvalidStateError") {
      return "This authenticator already holds one of your passkeys.";
    }
    if (error.name === "SecurityError") {
      return "This page's address cannot use passkeys (it needs HTTPS or localhost).";
    }
    return error.message || String(error);
  }

  function say(element, text) {
    if (!element) {
      return;
    }
    element.textContent = text || "";
    element.hidden = !text;
  }

  function supported() {
    return !!(window.PublicKeyCredential && navigator.credentials);
  }

  // -- the account page: add a passkey ----------------------------------------------------------

  function setUpRegistration(card) {
    var button = card.querySelector("[data-passkey-register]");
    var nameInput = card.querySelector("input[name=name]");
    var passwordInput = card.querySelector("input[name=password]");
    var errorBox = card.querySelector("[data-passkey-error]");
    var progress = card.querySelector("[data-passkey-progress]");
    if (!button) {
      return;
    }
    if (!supported()) {
      say(errorBox, "This browser cannot use passkeys.");
      button.disabled = true;
      return;
    }
    button.addEventListener("click", function () {
      say(errorBox, "");
      say(progress, "Follow your browser's prompt to create the passkey…");
      button.disabled = true;
      var challengeId = null;
      postJSON(card.dataset.beginUrl, { password: passwordInput ? passwordInput.value : "" }, card)
        .then(function (begun) {
          challengeId = begun.challenge_id;
          return navigator.credentials.create({ publicKey: creationOptions(begun.options) });
        })
        .then(function (credential) {
          return postJSON(
            card.dataset.finishUrl,
            {
              challenge_id: challengeId,
              credential: credentialJSON(credential),
              name: nameInput ? nameInput.value : "",
            },
            card
          );
        })
        .then(function () {
          say(progress, "Passkey added.");
          window.location.hash = "passkeys";
          window.location.reload();
        })
        .catch(function (error) {
          say(progress, "");
          say(errorBox, ceremonyMessage(error));
          button.disabled = false;
          if (error.field === "name" && nameInput) {
            nameInput.setAttribute("aria-invalid", "true");
            nameInput.focus();
          }
        });
    });
  }

  // -- the change page: sign a decision with a passkey -------------------------------------------

  function setUpSignOff(form) {
    var buttons = form.querySelectorAll("[data-passkey-decision]");
    var errorBox = form.querySelector("[data-passkey-error]");
    var statementBox = form.querySelector("[data-passkey-statement]");
    if (!buttons.length) {
      return;
    }
    if (!supported()) {
      say(errorBox, "This browser cannot use passkeys.");
      buttons.forEach(function (b) {
        b.disabled = true;
      });
      return;
    }
    // A plain (password) submit carries no stale passkey answer.
    form.addEventListener("submit", function () {
      if (!form.dataset.passkeySigned) {
        form.elements.passkey_challenge.value = "";
        form.elements.passkey_credential.value = "";
      }
    });
    buttons.forEach(function (button) {
      button.addEventListener("click", function () {
        var decision = button.dataset.passkeyDecision;
        var requirement = form.elements.requirement ? form.elements.requirement.value : "";
        var comment = form.elements.comment ? form.elements.comment.value : "";
        say(errorBox, "");
        buttons.forEach(function (b) {
          b.disabled = true;
        });
        var challengeId = null;
        postJSON(
          form.dataset.challengeUrl,
          { decision: decision, requirement: requirement, comment: comment },
          form
        )
          .then(function (challenge) {
            challengeId = challenge.challenge_id;
            // What is about to be signed, before the authenticator asks.
            if (statementBox) {
              say(statementBox, JSON.stringify(JSON.parse(challenge.statement), null, 2));
            }
            return navigator.credentials.get({ publicKey: requestOptions(challenge.options) });
          })
          .then(function (credential) {
            form.elements.passkey_challenge.value = challengeId;
            form.elements.passkey_credential.value = JSON.stringify(credentialJSON(credential));
            form.dataset.passkeySigned = "1";
            form.action = decision === "reject" ? form.dataset.rejectUrl : form.dataset.approveUrl;
            form.submit();
          })
          .catch(function (error) {
            say(errorBox, ceremonyMessage(error));
            buttons.forEach(function (b) {
              b.disabled = false;
            });
          });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-passkey-register-form]").forEach(setUpRegistration);
    document.querySelectorAll("form[data-passkey-sign-off]").forEach(setUpSignOff);
  });
})();
