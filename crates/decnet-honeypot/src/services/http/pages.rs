//! The web server being imitated: its `Server` header, header order and error pages
//! (byte for byte the product's templates).

use decnet_core::catalog::Distro;
use rand::Rng;

use crate::persona::Persona;

/// Which product's templates and header order are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// nginx (also used for unknown `Server` values).
    Nginx,
    /// Apache httpd 2.4.
    Apache,
}

impl Flavour {
    /// The flavour a `Server` header value belongs to.
    pub fn of(server: &str) -> Flavour {
        if server.starts_with("Apache") {
            Flavour::Apache
        } else {
            Flavour::Nginx
        }
    }
}

/// The default `Server` header of a decky: nginx or Apache as the distro ships them,
/// picked (and for Apache on Debian, versioned) by the decky's seed.
pub fn default_server(persona: &Persona) -> String {
    let mut rng = persona.rng("http-server");
    let apache = rng.gen_ratio(2, 5);
    let (nginx, apache_versions): (&str, &[&str]) = match distro_slug(persona.distro) {
        "ubuntu22" => ("nginx/1.18.0 (Ubuntu)", &["Apache/2.4.52 (Ubuntu)"]),
        "ubuntu20" => ("nginx/1.18.0 (Ubuntu)", &["Apache/2.4.41 (Ubuntu)"]),
        "rocky9" => (
            "nginx/1.20.1",
            &["Apache/2.4.57 (Rocky Linux)", "Apache/2.4.62 (Rocky Linux)"],
        ),
        "centos7" => ("nginx/1.20.1", &["Apache/2.4.6 (CentOS)"]),
        "alpine" => (
            "nginx/1.24.0",
            &["Apache/2.4.58 (Unix)", "Apache/2.4.59 (Unix)"],
        ),
        "fedora" => ("nginx/1.24.0", &["Apache/2.4.58 (Fedora Linux)"]),
        "kali" => (
            "nginx/1.24.0",
            &["Apache/2.4.58 (Debian)", "Apache/2.4.59 (Debian)"],
        ),
        "arch" => ("nginx/1.26.1", &["Apache/2.4.59 (Unix)"]),
        _ => (
            "nginx/1.22.1",
            &[
                "Apache/2.4.57 (Debian)",
                "Apache/2.4.59 (Debian)",
                "Apache/2.4.61 (Debian)",
                "Apache/2.4.62 (Debian)",
            ],
        ),
    };
    if apache {
        let i = rng.gen_range(0..apache_versions.len());
        apache_versions[i].to_owned()
    } else {
        nginx.to_owned()
    }
}

fn distro_slug(distro: &Distro) -> &'static str {
    distro.slug
}

/// The reason phrase nginx prints in its status line and error pages.
pub fn nginx_title(status: u16) -> Option<&'static str> {
    Some(match status {
        301 => "301 Moved Permanently",
        302 => "302 Found",
        303 => "303 See Other",
        307 => "307 Temporary Redirect",
        308 => "308 Permanent Redirect",
        400 => "400 Bad Request",
        401 => "401 Authorization Required",
        402 => "402 Payment Required",
        403 => "403 Forbidden",
        404 => "404 Not Found",
        405 => "405 Not Allowed",
        406 => "406 Not Acceptable",
        408 => "408 Request Time-out",
        409 => "409 Conflict",
        410 => "410 Gone",
        411 => "411 Length Required",
        412 => "412 Precondition Failed",
        413 => "413 Request Entity Too Large",
        414 => "414 Request-URI Too Large",
        415 => "415 Unsupported Media Type",
        416 => "416 Requested Range Not Satisfiable",
        421 => "421 Misdirected Request",
        429 => "429 Too Many Requests",
        500 => "500 Internal Server Error",
        501 => "501 Not Implemented",
        502 => "502 Bad Gateway",
        503 => "503 Service Temporarily Unavailable",
        504 => "504 Gateway Time-out",
        505 => "505 HTTP Version Not Supported",
        507 => "507 Insufficient Storage",
        _ => return None,
    })
}

/// nginx's built-in error page for `status` (`server` is the Server header value, which
/// nginx prints in the page tail), or `None` for statuses nginx sends without a body.
/// `msie` adds the padding nginx appends for MSIE user agents.
pub fn nginx_error_page(status: u16, server: &str, msie: bool) -> Option<String> {
    let title = nginx_title(status)?;
    let mut page = format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n<hr><center>{server}</center>\r\n</body>\r\n</html>\r\n"
    );
    if msie && status >= 400 {
        for _ in 0..6 {
            page.push_str("<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n");
        }
    }
    Some(page)
}

/// Apache's status line reason and page title for `status`.
pub fn apache_reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// Apache 2.4's canned error page. `host` is the request's host name (without port),
/// `port` the server port, `method` and `location` fill the 405 and redirect texts.
pub fn apache_error_page(
    status: u16,
    server: &str,
    host: &str,
    port: u16,
    method: &str,
    location: &str,
) -> String {
    let reason = apache_reason(status);
    let text = match status {
        301 | 302 => format!("<p>The document has moved <a href=\"{}\">here</a>.</p>\n", html_escape(location)),
        400 => "<p>Your browser sent a request that this server could not understand.<br />\n</p>\n".to_owned(),
        401 => "<p>This server could not verify that you\nare authorized to access the document\nrequested.  Either you supplied the wrong\ncredentials (e.g., bad password), or your\nbrowser doesn't understand how to supply\nthe credentials required.</p>\n".to_owned(),
        403 => "<p>You don't have permission to access this resource.</p>\n".to_owned(),
        404 => "<p>The requested URL was not found on this server.</p>\n".to_owned(),
        405 => format!("<p>The requested method {} is not allowed for this URL.</p>\n", html_escape(method)),
        413 => format!("The requested resource does not allow request data with {} requests, or the amount of data provided in\nthe request exceeds the capacity limit.\n", html_escape(method)),
        _ => "<p>The server encountered an internal error or\nmisconfiguration and was unable to complete\nyour request.</p>\n<p>Please contact the server administrator at \n webmaster@localhost to inform them of the time this error occurred,\n and the actions you performed just before this error.</p>\n<p>More information about this error may be available\nin the server error log.</p>\n".to_owned(),
    };
    format!(
        "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n<title>{status} {reason}</title>\n</head><body>\n<h1>{reason}</h1>\n{text}<hr>\n<address>{server} Server at {} Port {port}</address>\n</body></html>\n",
        html_escape(host)
    )
}

/// nginx's default `index.html` (Debian's package ships this one).
pub const NGINX_WELCOME: &str = "<!DOCTYPE html>\n<html>\n<head>\n<title>Welcome to nginx!</title>\n<style>\nhtml { color-scheme: light dark; }\nbody { width: 35em; margin: 0 auto;\nfont-family: Tahoma, Verdana, Arial, sans-serif; }\n</style>\n</head>\n<body>\n<h1>Welcome to nginx!</h1>\n<p>If you see this page, the nginx web server is successfully installed and\nworking. Further configuration is required.</p>\n\n<p>For online documentation and support please refer to\n<a href=\"http://nginx.org/\">nginx.org</a>.<br/>\nCommercial support is available at\n<a href=\"http://nginx.com/\">nginx.com</a>.</p>\n\n<p><em>Thank you for using nginx.</em></p>\n</body>\n</html>\n";

/// A short Apache default page.
pub const APACHE_WELCOME: &str = "<html><body><h1>It works!</h1></body></html>\n";

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_403_page_is_the_products() {
        let page = nginx_error_page(403, "nginx/1.22.1", false).unwrap();
        assert_eq!(page.len(), 153);
        assert!(page.ends_with("<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n"));
        assert!(nginx_error_page(418, "nginx", false).is_none());
        let padded = nginx_error_page(404, "nginx", true).unwrap();
        assert_eq!(padded.matches("a padding").count(), 6);
    }

    #[test]
    fn apache_pages() {
        let page = apache_error_page(404, "Apache/2.4.57 (Debian)", "www.example", 80, "GET", "");
        assert!(page.contains("<title>404 Not Found</title>"));
        assert!(
            page.contains(
                "<address>Apache/2.4.57 (Debian) Server at www.example Port 80</address>"
            )
        );
        let page = apache_error_page(405, "Apache", "h", 8080, "<x>", "");
        assert!(page.contains("method &lt;x&gt; is not allowed"));
    }

    #[test]
    fn flavour_follows_the_header() {
        assert_eq!(Flavour::of("Apache/2.4.57 (Debian)"), Flavour::Apache);
        assert_eq!(Flavour::of("nginx/1.22.1"), Flavour::Nginx);
        assert_eq!(Flavour::of("Microsoft-IIS/10.0"), Flavour::Nginx);
    }
}
