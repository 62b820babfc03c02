//! The routing table shared by the broker and the in-process bus: one matcher, one echo policy.

use std::collections::HashMap;

use crate::topic::{Pattern, matches};

/// Identifies one connection (a broker client, or one in-process bus handle).
pub(crate) type ConnId = u64;

/// The echo policy: an event is never delivered back to the connection that published it.
/// Events the broker makes itself (`origin == None`) go to everyone.
pub(crate) fn delivers_to(origin: Option<ConnId>, target: ConnId) -> bool {
    origin != Some(target)
}

/// Connections with their per-connection value `C` and their routes, each a pattern with
/// a per-route value `R`.
pub(crate) struct Router<C, R> {
    conns: HashMap<ConnId, (C, Vec<(Pattern, R)>)>,
}

impl<C, R> Router<C, R> {
    pub(crate) fn new() -> Self {
        Self {
            conns: HashMap::new(),
        }
    }

    pub(crate) fn add_conn(&mut self, id: ConnId, value: C) {
        self.conns.insert(id, (value, Vec::new()));
    }

    pub(crate) fn remove_conn(&mut self, id: ConnId) -> Option<(C, Vec<(Pattern, R)>)> {
        self.conns.remove(&id)
    }

    pub(crate) fn conn_count(&self) -> usize {
        self.conns.len()
    }

    /// Adds a route; returns the connection's route count after it, or None when the
    /// connection is unknown.
    pub(crate) fn add_route(&mut self, id: ConnId, pattern: Pattern, value: R) -> Option<usize> {
        let (_, routes) = self.conns.get_mut(&id)?;
        routes.push((pattern, value));
        Some(routes.len())
    }

    /// Removes the routes of connection `id` for which `pred` holds; returns how many.
    pub(crate) fn remove_routes(
        &mut self,
        id: ConnId,
        mut pred: impl FnMut(&Pattern, &R) -> bool,
    ) -> usize {
        let Some((_, routes)) = self.conns.get_mut(&id) else {
            return 0;
        };
        let before = routes.len();
        routes.retain(|(p, r)| !pred(p, r));
        before - routes.len()
    }

    pub(crate) fn routes(&self, id: ConnId) -> &[(Pattern, R)] {
        self.conns.get(&id).map_or(&[], |(_, r)| r.as_slice())
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (ConnId, &C, &[(Pattern, R)])> {
        self.conns.iter().map(|(id, (c, r))| (*id, c, r.as_slice()))
    }

    /// Calls `f` once per connection other than `origin` with at least one route matching
    /// `topic` (the broker: one EVT per connection).
    pub(crate) fn for_each_conn<'a>(
        &'a self,
        topic: &str,
        origin: Option<ConnId>,
        mut f: impl FnMut(&'a C),
    ) {
        for (id, (c, routes)) in &self.conns {
            if delivers_to(origin, *id) && routes.iter().any(|(p, _)| matches(p.as_str(), topic)) {
                f(c);
            }
        }
    }

    /// Calls `f` once per matching route of every connection other than `origin` (the
    /// in-process bus and the socket client's local fan-out: one copy per subscription).
    pub(crate) fn for_each_route(
        &self,
        topic: &str,
        origin: Option<ConnId>,
        mut f: impl FnMut(&R),
    ) {
        for (id, (_, routes)) in &self.conns {
            if !delivers_to(origin, *id) {
                continue;
            }
            for (p, r) in routes {
                if matches(p.as_str(), topic) {
                    f(r);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pattern {
        Pattern::new(s).unwrap()
    }

    #[test]
    fn no_echo_and_one_delivery_per_connection() {
        let mut r: Router<&str, u32> = Router::new();
        r.add_conn(1, "one");
        r.add_conn(2, "two");
        r.add_route(1, p("a.>"), 10);
        r.add_route(2, p("a.*"), 20);
        r.add_route(2, p("a.>"), 21);
        let mut conns = Vec::new();
        r.for_each_conn("a.b", Some(1), |c| conns.push(*c));
        assert_eq!(conns, vec!["two"]);
        let mut routes = Vec::new();
        r.for_each_route("a.b", Some(1), |v| routes.push(*v));
        routes.sort_unstable();
        assert_eq!(routes, vec![20, 21]);
        let mut all = Vec::new();
        r.for_each_conn("a.b", None, |c| all.push(*c));
        all.sort_unstable();
        assert_eq!(all, vec!["one", "two"]);
        assert_eq!(r.remove_routes(2, |_, v| *v == 20), 1);
        assert_eq!(r.routes(2).len(), 1);
        assert!(r.add_route(3, p("x"), 0).is_none());
    }
}
