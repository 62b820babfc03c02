//! Fake application skins: WordPress, phpMyAdmin, Tomcat and Jenkins login surfaces with
//! per-decky version strings.

use rand::Rng;
use rand::seq::SliceRandom;

use super::pages::html_escape;
use crate::persona::Persona;

/// One fake application with its (seeded) version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum App {
    /// WordPress.
    WordPress {
        /// e.g. `6.4.3`.
        version: String,
    },
    /// phpMyAdmin.
    PhpMyAdmin {
        /// e.g. `5.2.1`.
        version: String,
    },
    /// Apache Tomcat.
    Tomcat {
        /// e.g. `9.0.83`.
        version: String,
    },
    /// Jenkins.
    Jenkins {
        /// e.g. `2.426.3`.
        version: String,
        /// `X-Jenkins-Session` (stable for the process, like a real instance).
        session: String,
    },
}

impl App {
    /// The app the persona asks for (`fake_app`), `None` for `none` or unset.
    pub fn from_persona(persona: &Persona) -> Option<App> {
        let mut rng = persona.rng("http-fake-app");
        let pick = |rng: &mut rand_chacha::ChaCha20Rng, list: &[&str]| {
            list.choose(rng).copied().unwrap_or(list[0]).to_owned()
        };
        Some(match persona.get("fake_app")? {
            "wordpress" => App::WordPress {
                version: pick(
                    &mut rng,
                    &["6.4.3", "6.5.2", "6.3.2", "6.2.2", "6.1.1", "5.9.3"],
                ),
            },
            "phpmyadmin" => App::PhpMyAdmin {
                version: pick(&mut rng, &["5.2.1", "5.2.0", "5.1.1", "5.1.3", "4.9.7"]),
            },
            "tomcat" => App::Tomcat {
                version: pick(
                    &mut rng,
                    &["9.0.83", "9.0.71", "9.0.58", "8.5.87", "10.1.16"],
                ),
            },
            "jenkins" => App::Jenkins {
                version: pick(
                    &mut rng,
                    &[
                        "2.426.3", "2.440.1", "2.414.2", "2.401.3", "2.387.3", "2.375.4",
                    ],
                ),
                session: format!("{:08x}", rng.r#gen::<u32>()),
            },
            _ => return None,
        })
    }
}

/// What the app makes of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRequest<'a> {
    /// Method.
    pub method: &'a str,
    /// Path (without query).
    pub path: &'a str,
    /// Host as the client named it (with port), for absolute redirects.
    pub host: &'a str,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// The login name a form or XML-RPC body carried, if any.
    pub login: Option<&'a str>,
}

/// The app's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    /// The web server's own error page for this status.
    Server(u16),
    /// A document.
    Doc {
        /// Status.
        status: u16,
        /// Content type.
        content_type: &'static str,
        /// Headers after the standard ones (`Location`, `Set-Cookie`, ...).
        headers: Vec<(&'static str, String)>,
        /// Body.
        body: String,
    },
}

fn html(status: u16, body: String) -> Page {
    Page::Doc {
        status,
        content_type: "text/html; charset=UTF-8",
        headers: Vec::new(),
        body,
    }
}

fn with_headers(page: Page, extra: Vec<(&'static str, String)>) -> Page {
    match page {
        Page::Doc {
            status,
            content_type,
            mut headers,
            body,
        } => {
            headers.extend(extra);
            Page::Doc {
                status,
                content_type,
                headers,
                body,
            }
        }
        other => other,
    }
}

fn redirect(status: u16, location: String, body: String) -> Page {
    Page::Doc {
        status,
        content_type: "text/html; charset=UTF-8",
        headers: vec![("Location", location)],
        body,
    }
}

fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn token() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

impl App {
    /// Answers one request.
    pub fn route(&self, req: &AppRequest<'_>) -> Page {
        match self {
            App::WordPress { version } => wordpress(version, req),
            App::PhpMyAdmin { version } => phpmyadmin(version, req),
            App::Tomcat { version } => tomcat(version, req),
            App::Jenkins { version, session } => {
                let page = jenkins(req);
                with_headers(
                    page,
                    vec![
                        ("X-Content-Type-Options", "nosniff".into()),
                        ("X-Hudson", "1.395".into()),
                        ("X-Jenkins", version.clone()),
                        ("X-Jenkins-Session", session.clone()),
                    ],
                )
            }
        }
    }
}

fn wordpress(version: &str, req: &AppRequest<'_>) -> Page {
    let base = format!("{}://{}", req.scheme, req.host);
    let path = req.path;
    match path {
        "/" | "/index.php" => with_headers(
            html(200, wp_home(version, &base)),
            vec![(
                "Link",
                format!("<{base}/wp-json/>; rel=\"https://api.w.org/\""),
            )],
        ),
        "/wp-login.php" => {
            let error = if req.method == "POST" {
                Some(match req.login {
                    Some(user) if !user.is_empty() => format!(
                        "<strong>Error:</strong> The password you entered for the username <strong>{}</strong> is incorrect. <a href=\"{base}/wp-login.php?action=lostpassword\">Lost your password?</a>",
                        html_escape(user)
                    ),
                    _ => "<strong>Error:</strong> The username field is empty.<br />\n<strong>Error:</strong> The password field is empty.".to_owned(),
                })
            } else {
                None
            };
            with_headers(
                html(200, wp_login(version, &base, error.as_deref())),
                vec![
                    ("Expires", "Wed, 11 Jan 1984 05:00:00 GMT".into()),
                    (
                        "Cache-Control",
                        "no-cache, must-revalidate, max-age=0".into(),
                    ),
                    (
                        "Set-Cookie",
                        "wordpress_test_cookie=WP%20Cookie%20check; path=/; HttpOnly".into(),
                    ),
                    ("X-Frame-Options", "SAMEORIGIN".into()),
                ],
            )
        }
        "/readme.html" => html(200, wp_readme(version)),
        "/robots.txt" => Page::Doc {
            status: 200,
            content_type: "text/plain; charset=utf-8",
            headers: Vec::new(),
            body: format!(
                "User-agent: *\nDisallow: /wp-admin/\nAllow: /wp-admin/admin-ajax.php\n\nSitemap: {base}/wp-sitemap.xml\n"
            ),
        },
        "/xmlrpc.php" => {
            if req.method != "POST" {
                return Page::Doc {
                    status: 405,
                    content_type: "text/plain;charset=UTF-8",
                    headers: vec![("Allow", "POST".into())],
                    body: "XML-RPC server accepts POST requests only.".into(),
                };
            }
            let (code, text) = if req.login.is_some() {
                (403, "Incorrect username or password.")
            } else {
                (-32700, "parse error. not well formed")
            };
            Page::Doc {
                status: 200,
                content_type: "text/xml; charset=UTF-8",
                headers: Vec::new(),
                body: format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<methodResponse>\n  <fault>\n    <value>\n      <struct>\n        <member>\n          <name>faultCode</name>\n          <value><int>{code}</int></value>\n        </member>\n        <member>\n          <name>faultString</name>\n          <value><string>{text}</string></value>\n        </member>\n      </struct>\n    </value>\n  </fault>\n</methodResponse>\n"
                ),
            }
        }
        p if p == "/wp-admin" || p.starts_with("/wp-admin/") => {
            if p == "/wp-admin/admin-ajax.php" {
                return Page::Doc {
                    status: 400,
                    content_type: "text/html; charset=UTF-8",
                    headers: Vec::new(),
                    body: "0".into(),
                };
            }
            let target = format!("{base}/wp-admin/");
            redirect(
                302,
                format!(
                    "{base}/wp-login.php?redirect_to={}&reauth=1",
                    url_encode(&target)
                ),
                String::new(),
            )
        }
        p if p.starts_with("/wp-content/") || p.starts_with("/wp-includes/") => {
            if p.ends_with('/') {
                html(200, String::new())
            } else {
                Page::Server(404)
            }
        }
        _ => Page::Server(404),
    }
}

fn wp_home(version: &str, base: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en-US\">\n<head>\n<meta charset=\"UTF-8\" />\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\" />\n<meta name='robots' content='max-image-preview:large' />\n<title>Company Blog</title>\n<link rel=\"alternate\" type=\"application/rss+xml\" title=\"Company Blog &raquo; Feed\" href=\"{base}/feed/\" />\n<link rel='stylesheet' id='wp-block-library-css' href='{base}/wp-includes/css/dist/block-library/style.min.css?ver={version}' media='all' />\n<link rel=\"https://api.w.org/\" href=\"{base}/wp-json/\" />\n<link rel=\"EditURI\" type=\"application/rsd+xml\" title=\"RSD\" href=\"{base}/xmlrpc.php?rsd\" />\n<meta name=\"generator\" content=\"WordPress {version}\" />\n</head>\n<body class=\"home blog wp-embed-responsive\">\n<div class=\"wp-site-blocks\">\n<header class=\"wp-block-template-part\"><p class=\"wp-block-site-title\"><a href=\"{base}\" rel=\"home\">Company Blog</a></p></header>\n<main class=\"wp-block-group\">\n<h2 class=\"wp-block-post-title\"><a href=\"{base}/?p=1\">Hello world!</a></h2>\n<div class=\"wp-block-post-excerpt\"><p class=\"wp-block-post-excerpt__excerpt\">Welcome to WordPress. This is your first post. Edit or delete it, then start writing! </p></div>\n</main>\n<footer class=\"wp-block-template-part\"><p class=\"has-text-align-center\">Proudly powered by <a href=\"https://wordpress.org\" rel=\"nofollow\">WordPress</a></p></footer>\n</div>\n</body>\n</html>\n"
    )
}

fn wp_login(version: &str, base: &str, error: Option<&str>) -> String {
    let error = error
        .map(|e| {
            format!("<div id=\"login_error\" class=\"notice notice-error\">\t{e}<br />\n</div>\n")
        })
        .unwrap_or_default();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en-US\">\n<head>\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n<title>Log In &lsaquo; Company Blog &#8212; WordPress</title>\n<meta name='robots' content='max-image-preview:large, noindex, noarchive' />\n<link rel='stylesheet' id='login-css' href='{base}/wp-admin/css/login.min.css?ver={version}' media='all' />\n<meta name='referrer' content='strict-origin-when-cross-origin' />\n<meta name=\"viewport\" content=\"width=device-width\" />\n</head>\n<body class=\"login no-js login-action-login wp-core-ui  locale-en-us\">\n<div id=\"login\">\n<h1><a href=\"https://wordpress.org/\">Powered by WordPress</a></h1>\n{error}\n<form name=\"loginform\" id=\"loginform\" action=\"{base}/wp-login.php\" method=\"post\">\n<p>\n<label for=\"user_login\">Username or Email Address</label>\n<input type=\"text\" name=\"log\" id=\"user_login\" class=\"input\" value=\"\" size=\"20\" autocapitalize=\"off\" autocomplete=\"username\" required=\"required\" />\n</p>\n<div class=\"user-pass-wrap\">\n<label for=\"user_pass\">Password</label>\n<div class=\"wp-pwd\">\n<input type=\"password\" name=\"pwd\" id=\"user_pass\" class=\"input password-input\" value=\"\" size=\"20\" autocomplete=\"current-password\" spellcheck=\"false\" required=\"required\" />\n</div>\n</div>\n<p class=\"forgetmenot\"><input name=\"rememberme\" type=\"checkbox\" id=\"rememberme\" value=\"forever\"  /> <label for=\"rememberme\">Remember Me</label></p>\n<p class=\"submit\">\n<input type=\"submit\" name=\"wp-submit\" id=\"wp-submit\" class=\"button button-primary button-large\" value=\"Log In\" />\n<input type=\"hidden\" name=\"redirect_to\" value=\"{base}/wp-admin/\" />\n<input type=\"hidden\" name=\"testcookie\" value=\"1\" />\n</p>\n</form>\n<p id=\"nav\"><a href=\"{base}/wp-login.php?action=lostpassword\">Lost your password?</a></p>\n<p id=\"backtoblog\"><a href=\"{base}/\">&larr; Go to Company Blog</a></p>\n</div>\n</body>\n</html>\n"
    )
}

fn wp_readme(version: &str) -> String {
    let short: String = version.split('.').take(2).collect::<Vec<_>>().join(".");
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n\t<meta name=\"viewport\" content=\"width=device-width\" />\n\t<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\" />\n\t<title>WordPress &#8250; ReadMe</title>\n\t<link rel=\"stylesheet\" href=\"wp-admin/css/install.css?ver=20100228\" type=\"text/css\" />\n</head>\n<body>\n<h1 id=\"logo\">\n\t<a href=\"https://wordpress.org/\"><img alt=\"WordPress\" src=\"wp-admin/images/wordpress-logo.png\" /></a>\n</h1>\n<p style=\"text-align: center\">Semantic Personal Publishing Platform</p>\n\n<h2>First Things First</h2>\n<p>Welcome. WordPress is a very special project to me. Every developer and contributor adds something unique to the mix, and together we create something beautiful that I am proud to be a part of. Thousands of hours have gone into WordPress, and we are dedicated to making it better every day. Thank you for making it part of your world.</p>\n<p style=\"text-align: right\">&#8212; Matt Mullenweg</p>\n\n<h2>Installation: Famous 5-minute install</h2>\n<ol>\n\t<li>Unzip the package in an empty directory and upload everything.</li>\n\t<li>Open <span class=\"file\"><a href=\"wp-admin/install.php\">wp-admin/install.php</a></span> in your browser. It will take you through the process to set up a <code>wp-config.php</code> file with your database connection details.</li>\n</ol>\n\n<h2>System Requirements</h2>\n<ul>\n\t<li><a href=\"https://www.php.net/\">PHP</a> version <strong>7.0</strong> or greater.</li>\n\t<li><a href=\"https://www.mysql.com/\">MySQL</a> version <strong>5.0.15</strong> or greater or any version of <a href=\"https://mariadb.org/\">MariaDB</a>.</li>\n</ul>\n\n<h2>Version {short}</h2>\n<p>Copyright 2011-2024 by the contributors. WordPress is released under the <abbr>GPL</abbr>.</p>\n</body>\n</html>\n"
    )
}

fn phpmyadmin(version: &str, req: &AppRequest<'_>) -> Page {
    let prefix = if req.path.starts_with("/phpmyadmin") {
        "/phpmyadmin/"
    } else {
        "/"
    };
    match req.path {
        "/phpmyadmin" => redirect(
            301,
            format!("{}://{}/phpmyadmin/", req.scheme, req.host),
            String::new(),
        ),
        "/" | "/index.php" | "/phpmyadmin/" | "/phpmyadmin/index.php" => {
            let error = if req.method == "POST" {
                req.login.map(|user| {
                    format!(
                        "<div class=\"alert alert-danger\" role=\"alert\"><img src=\"themes/dot.gif\" title=\"\" alt=\"\" class=\"icon ic_s_error\"> Cannot log in to the MySQL server</div><div class=\"alert alert-danger\" role=\"alert\"><img src=\"themes/dot.gif\" title=\"\" alt=\"\" class=\"icon ic_s_error\"> mysqli::real_connect(): (HY000/1045): Access denied for user &#039;{}&#039;@&#039;localhost&#039; (using password: YES)</div>",
                        html_escape(user)
                    )
                })
            } else {
                None
            };
            let session = token();
            with_headers(
                html(200, pma_login(version, prefix, error.as_deref())),
                vec![
                    (
                        "Set-Cookie",
                        format!("phpMyAdmin={session}; path={prefix}; HttpOnly; SameSite=Strict"),
                    ),
                    ("X-Frame-Options", "DENY".into()),
                    ("X-Robots-Tag", "noindex, nofollow".into()),
                    ("Cache-Control", "no-store, no-cache, must-revalidate,  pre-check=0, post-check=0, max-age=0".into()),
                ],
            )
        }
        _ => Page::Server(404),
    }
}

fn pma_login(version: &str, prefix: &str, error: Option<&str>) -> String {
    let token = token();
    let error = error.unwrap_or("");
    format!(
        "<!DOCTYPE HTML>\n<html lang=\"en\" dir=\"ltr\">\n<head>\n  <link rel=\"icon\" href=\"favicon.ico\" type=\"image/x-icon\">\n  <link rel=\"shortcut icon\" href=\"favicon.ico\" type=\"image/x-icon\">\n  <meta charset=\"utf-8\">\n  <meta name=\"referrer\" content=\"no-referrer\">\n  <meta name=\"robots\" content=\"noindex,nofollow,notranslate\">\n  <meta name=\"google\" content=\"notranslate\">\n  <link rel=\"stylesheet\" type=\"text/css\" href=\"{prefix}themes/pmahomme/css/theme.css?v={version}\">\n  <title>phpMyAdmin</title>\n  <script data-cfasync=\"false\" type=\"text/javascript\" src=\"{prefix}js/vendor/jquery/jquery.min.js?v={version}\"></script>\n</head>\n<body id=\"loginform\">\n<div class=\"container\">\n<a href=\"./url.php?url=https%3A%2F%2Fwww.phpmyadmin.net%2F\" target=\"_blank\" rel=\"noopener noreferrer\" class=\"logo\"><img src=\"./themes/pmahomme/img/logo_right.png\" id=\"imLogo\" name=\"imLogo\" alt=\"phpMyAdmin\" border=\"0\"></a>\n<h1>Welcome to <bdo dir=\"ltr\" lang=\"en\">phpMyAdmin</bdo></h1>\n{error}\n<noscript><div class=\"alert alert-danger\" role=\"alert\">Javascript must be enabled past this point!</div></noscript>\n<div class=\"card\">\n<form method=\"post\" id=\"login_form\" action=\"index.php?route=/\" name=\"login_form\" class=\"disableAjax hide js-show form-horizontal\">\n<fieldset class=\"mb-3\">\n<legend>Log in</legend>\n<div class=\"item\">\n<label for=\"input_username\" class=\"col-form-label\">Username:</label>\n<input type=\"text\" name=\"pma_username\" id=\"input_username\" value=\"\" size=\"24\" class=\"form-control\" autocomplete=\"username\" spellcheck=\"false\">\n</div>\n<div class=\"item\">\n<label for=\"input_password\" class=\"col-form-label\">Password:</label>\n<input type=\"password\" name=\"pma_password\" id=\"input_password\" value=\"\" size=\"24\" class=\"form-control\" autocomplete=\"current-password\" spellcheck=\"false\">\n</div>\n<input type=\"hidden\" name=\"server\" value=\"1\">\n</fieldset>\n<fieldset class=\"tblFooters\">\n<input class=\"btn btn-primary\" value=\"Log in\" type=\"submit\" id=\"input_go\">\n<input type=\"hidden\" name=\"route\" value=\"/\"><input type=\"hidden\" name=\"token\" value=\"{token}\">\n</fieldset>\n</form>\n</div>\n</div>\n</body>\n</html>\n"
    )
}

const TOMCAT_STYLE: &str = "body {font-family:Tahoma,Arial,sans-serif;} h1, h2, h3, b {color:white;background-color:#525D76;} h1 {font-size:22px;} h2 {font-size:16px;} h3 {font-size:14px;} p {font-size:12px;} a {color:black;} .line {height:1px;background-color:#525D76;border:none;}";

fn tomcat(version: &str, req: &AppRequest<'_>) -> Page {
    let realm = |name: &str| ("WWW-Authenticate", format!("Basic realm=\"{name}\""));
    match req.path {
        "/" | "/index.jsp" => html(200, tomcat_home(version)),
        "/manager" | "/host-manager" => Page::Doc {
            status: 302,
            content_type: "text/html;charset=UTF-8",
            headers: vec![("Location", format!("{}/", req.path))],
            body: String::new(),
        },
        "/manager/" => Page::Doc {
            status: 302,
            content_type: "text/html;charset=UTF-8",
            headers: vec![("Location", "/manager/html".into())],
            body: String::new(),
        },
        p if p.starts_with("/manager/") => Page::Doc {
            status: 401,
            content_type: "text/html;charset=ISO-8859-1",
            headers: vec![
                ("Cache-Control", "private".into()),
                ("Expires", "Thu, 01 Jan 1970 00:00:00 GMT".into()),
                realm("Tomcat Manager Application"),
            ],
            body: tomcat_401("manager-gui", "/manager/html"),
        },
        p if p.starts_with("/host-manager/") => Page::Doc {
            status: 401,
            content_type: "text/html;charset=ISO-8859-1",
            headers: vec![
                ("Cache-Control", "private".into()),
                ("Expires", "Thu, 01 Jan 1970 00:00:00 GMT".into()),
                realm("Tomcat Host Manager Application"),
            ],
            body: tomcat_401("admin-gui", "/host-manager/html"),
        },
        _ => Page::Doc {
            status: 404,
            content_type: "text/html;charset=utf-8",
            headers: vec![("Content-Language", "en".into())],
            body: format!(
                "<!doctype html><html lang=\"en\"><head><title>HTTP Status 404 – Not Found</title><style type=\"text/css\">{TOMCAT_STYLE}</style></head><body><h1>HTTP Status 404 – Not Found</h1><hr class=\"line\" /><p><b>Type</b> Status Report</p><p><b>Description</b> The origin server did not find a current representation for the target resource or is not willing to disclose that one exists.</p><hr class=\"line\" /><h3>Apache Tomcat/{version}</h3></body></html>"
            ),
        },
    }
}

fn tomcat_401(role: &str, url: &str) -> String {
    format!(
        "<!DOCTYPE html PUBLIC \"-//W3C//DTD HTML 4.01//EN\" \"http://www.w3.org/TR/html4/strict.dtd\">\n<html>\n <head>\n  <title>401 Unauthorized</title>\n  <style type=\"text/css\">\n    <!--\n    BODY {{font-family:Tahoma,Arial,sans-serif;color:black;background-color:white;font-size:12px;}}\n    H1 {{font-family:Tahoma,Arial,sans-serif;color:white;background-color:#525D76;font-size:22px;}}\n    PRE, TT {{border: 1px dotted #525D76}}\n    A {{color : black;}}A.name {{color : black;}}\n    -->\n  </style>\n </head>\n <body>\n   <h1>401 Unauthorized</h1>\n   <p>\n    You are not authorized to view this page. If you have not changed\n    any configuration files, please examine the file\n    <tt>conf/tomcat-users.xml</tt> in your installation. That\n    file must contain the credentials to let you use this webapp.\n   </p>\n   <p>\n    For example, to add the <tt>{role}</tt> role to a user named\n    <tt>tomcat</tt> with a password of <tt>s3cret</tt>, add the following to the\n    config file listed above.\n   </p>\n<pre>\n&lt;role rolename=\"{role}\"/&gt;\n&lt;user username=\"tomcat\" password=\"s3cret\" roles=\"{role}\"/&gt;\n</pre>\n   <p>\n    Note that for Tomcat 7 onwards, the roles required to use the manager\n    application were changed from the single <tt>manager</tt> role to the\n    following four roles. You will need to assign the role(s) required for\n    the functionality you wish to access.\n   </p>\n   <p>\n    The HTML interface ({url}) is protected against CSRF but the text and JMX\n    interfaces are not.\n   </p>\n </body>\n\n</html>\n"
    )
}

fn tomcat_home(version: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n    <head>\n        <meta charset=\"UTF-8\" />\n        <title>Apache Tomcat/{version}</title>\n        <link href=\"favicon.ico\" rel=\"icon\" type=\"image/x-icon\" />\n        <link href=\"tomcat.css\" rel=\"stylesheet\" type=\"text/css\" />\n    </head>\n\n    <body>\n        <div id=\"wrapper\">\n            <div id=\"navigation\" class=\"curved container\">\n                <span id=\"nav-home\"><a href=\"https://tomcat.apache.org/\">Home</a></span>\n                <span id=\"nav-hosts\"><a href=\"/docs/\">Documentation</a></span>\n                <span id=\"nav-config\"><a href=\"/docs/config/\">Configuration</a></span>\n                <span id=\"nav-examples\"><a href=\"/examples/\">Examples</a></span>\n                <br class=\"separator\" />\n            </div>\n            <div id=\"asf-box\">\n                <h1>Apache Tomcat/{version}</h1>\n            </div>\n            <div id=\"upper\" class=\"curved container\">\n                <div id=\"congrats\" class=\"curved container\">\n                    <h2>If you're seeing this, you've successfully installed Tomcat. Congratulations!</h2>\n                </div>\n            </div>\n            <div id=\"middle\" class=\"curved container\">\n                <h3>Managing Tomcat</h3>\n                <p>For security, access to the <a href=\"/manager/html\">manager webapp</a> is restricted.\n                Users are defined in:</p>\n                <pre>$CATALINA_HOME/conf/tomcat-users.xml</pre>\n                <div class=\"button\">\n                    <a class=\"container shadow\" href=\"/manager/status\"><span>Server Status</span></a>\n                </div>\n                <div class=\"button\">\n                    <a class=\"container shadow\" href=\"/manager/html\"><span>Manager App</span></a>\n                </div>\n                <div class=\"button\">\n                    <a class=\"container shadow\" href=\"/host-manager/html\"><span>Host Manager</span></a>\n                </div>\n            </div>\n            <p class=\"copyright\">Copyright &copy;1999-2024 Apache Software Foundation.  All Rights Reserved</p>\n        </div>\n    </body>\n\n</html>\n"
    )
}

fn jenkins(req: &AppRequest<'_>) -> Page {
    let login_page = |status: u16, error: bool| {
        let notice = if error {
            "<div class=\"app-sign-in-register__error\">Invalid username or password</div>\n"
        } else {
            ""
        };
        Page::Doc {
            status,
            content_type: "text/html;charset=utf-8",
            headers: vec![
                ("Cache-Control", "no-cache,no-store,must-revalidate".into()),
                ("X-Frame-Options", "sameorigin".into()),
            ],
            body: format!(
                "<!DOCTYPE html><html lang=\"en-US\"><head resURL=\"/static/a1b2c3d4\" data-rooturl=\"\" data-resurl=\"/static/a1b2c3d4\" data-imagesurl=\"/static/a1b2c3d4/images\"><title>Sign in [Jenkins]</title><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><link rel=\"stylesheet\" href=\"/static/a1b2c3d4/jsbundles/simple-page.css\" type=\"text/css\"></head><body><div class=\"app-sign-in-register\"><div class=\"app-sign-in-register__content\"><div class=\"app-sign-in-register__content-inner\"><h1>Sign in to Jenkins</h1>\n{notice}<form method=\"post\" name=\"login\" action=\"j_spring_security_check\"><div class=\"jenkins-form-item jenkins-form-item--tight\"><label class=\"jenkins-form-label\" for=\"j_username\">Username</label><input autocorrect=\"off\" autocomplete=\"username\" name=\"j_username\" id=\"j_username\" type=\"text\" autofocus=\"autofocus\" class=\"jenkins-input\" autocapitalize=\"off\" required></div><div class=\"jenkins-form-item jenkins-form-item--tight\"><label class=\"jenkins-form-label\" for=\"j_password\">Password</label><input name=\"j_password\" id=\"j_password\" type=\"password\" class=\"jenkins-input\" autocomplete=\"current-password\" required></div><div class=\"jenkins-checkbox\"><input type=\"checkbox\" id=\"remember_me\" name=\"remember_me\"><label for=\"remember_me\">Keep me signed in</label></div><input name=\"from\" type=\"hidden\" value=\"/\"><button type=\"submit\" name=\"Submit\" class=\"jenkins-button jenkins-button--primary\">Sign in</button></form></div></div></div></body></html>"
            ),
        }
    };
    match req.path {
        "/login" => login_page(200, false),
        "/loginError" => login_page(401, true),
        "/j_spring_security_check" | "/j_acegi_security_check" => Page::Doc {
            status: 302,
            content_type: "text/html;charset=utf-8",
            headers: vec![("Location", "/loginError".into())],
            body: String::new(),
        },
        "/robots.txt" => Page::Doc {
            status: 200,
            content_type: "text/plain",
            headers: Vec::new(),
            body: "# we don't want robots to click \"build\" links\nUser-agent: *\nDisallow: /\n"
                .into(),
        },
        p => {
            let from = url_encode(p);
            Page::Doc {
                status: 403,
                content_type: "text/html;charset=utf-8",
                headers: vec![
                    ("X-You-Are-Authenticated-As", "anonymous".into()),
                    ("X-You-Are-In-Group-Disabled", "JENKINS-39402: use -Dhudson.security.AccessDeniedException2.REPORT_GROUP_HEADERS=true or use /whoAmI to diagnose".into()),
                    ("X-Required-Permission", "hudson.model.Hudson.Read".into()),
                    ("X-Permission-Implied-By", "hudson.security.Permission.GenericRead".into()),
                    ("X-Permission-Implied-By", "hudson.model.Hudson.Administer".into()),
                ],
                body: format!(
                    "<html><head><meta http-equiv='refresh' content='1;url=/login?from={from}'/><script id='redirect' data-redirect-url='/login?from={from}' src='/static/a1b2c3d4/scripts/redirect.js'></script></head><body style='background-color:white; color:white;'>\nAuthentication required\n<!--\n-->\n\n</body></html>\n"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(method: &'a str, path: &'a str) -> AppRequest<'a> {
        AppRequest {
            method,
            path,
            host: "blog.example",
            scheme: "http",
            login: None,
        }
    }

    #[test]
    fn wordpress_surfaces() {
        let app = App::WordPress {
            version: "6.4.3".into(),
        };
        let Page::Doc {
            status, headers, ..
        } = app.route(&req("GET", "/wp-admin/"))
        else {
            panic!()
        };
        assert_eq!(status, 302);
        assert_eq!(
            headers[0].1,
            "http://blog.example/wp-login.php?redirect_to=http%3A%2F%2Fblog.example%2Fwp-admin%2F&reauth=1"
        );
        let Page::Doc { body, .. } = app.route(&req("GET", "/")) else {
            panic!()
        };
        assert!(body.contains("content=\"WordPress 6.4.3\""));
        let Page::Doc { status, body, .. } = app.route(&req("GET", "/xmlrpc.php")) else {
            panic!()
        };
        assert_eq!(
            (status, body.as_str()),
            (405, "XML-RPC server accepts POST requests only.")
        );
        let mut post = req("POST", "/wp-login.php");
        post.login = Some("<admin>");
        let Page::Doc { body, .. } = app.route(&post) else {
            panic!()
        };
        assert!(body.contains("username <strong>&lt;admin&gt;</strong> is incorrect"));
        assert_eq!(app.route(&req("GET", "/nope")), Page::Server(404));
    }

    #[test]
    fn tomcat_manager_asks_for_basic_credentials() {
        let app = App::Tomcat {
            version: "9.0.83".into(),
        };
        let Page::Doc {
            status, headers, ..
        } = app.route(&req("GET", "/manager/html"))
        else {
            panic!()
        };
        assert_eq!(status, 401);
        assert!(headers.contains(&(
            "WWW-Authenticate",
            "Basic realm=\"Tomcat Manager Application\"".into()
        )));
    }

    #[test]
    fn jenkins_headers_and_login_flow() {
        let app = App::Jenkins {
            version: "2.426.3".into(),
            session: "0badc0de".into(),
        };
        let Page::Doc {
            status, headers, ..
        } = app.route(&req("GET", "/"))
        else {
            panic!()
        };
        assert_eq!(status, 403);
        assert!(headers.contains(&("X-Jenkins", "2.426.3".into())));
        let Page::Doc {
            status, headers, ..
        } = app.route(&req("POST", "/j_spring_security_check"))
        else {
            panic!()
        };
        assert_eq!(status, 302);
        assert_eq!(headers[0], ("Location", "/loginError".into()));
    }
}
