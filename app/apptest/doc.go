// Package apptest builds the service layer on a real store for the tests of
// the packages that sit on top of it (the API, the panel, the bot, the
// notifier…), so each of them tests against the same fixture instead of
// wiring its own. It is for tests only: production code must not import it.
//
// [New] opens a bbolt store in the test's temporary directory, a ristretto
// cache and a fresh data key, builds an [app.Service] on them driven by a
// [Clock], and, when the test ends, checks the store (page structure and
// every index against its rebuild) and closes it. Packages that only need a
// clock the test moves by hand use [Clock] alone.
//
// Package app's own tests cannot import apptest (it imports app), nor can
// the tests of packages app itself imports.
package apptest
