//! The behaviour every gallery store must have, run against each store by its own test file.

#![allow(dead_code)]

use likeness_gallery::*;

pub const DLIB: &str = "dlib_face_recognition_resnet_model_v1";
pub const TOLERANCE: f32 = 0.6;

/// Person `who`'s face, seen with a little variation `v` (0 = their centre): unit vectors on
/// distinct axes are sqrt(2) apart, far beyond the tolerance; `v` moves along a shared axis.
pub fn face(who: usize, v: f32) -> Vec<f32> {
    let mut e = vec![0.0; 128];
    e[who % 100] = 1.0;
    e[127] = v;
    e
}

pub fn request(name: &str, faces: &[Vec<f32>]) -> EnrolRequest {
    EnrolRequest {
        name: name.into(),
        embedder: DLIB.into(),
        samples: faces
            .iter()
            .enumerate()
            .map(|(i, f)| Sample::new(f.clone(), format!("{name}-{i}.jpg")))
            .collect(),
        tolerance: TOLERANCE,
        insist: false,
    }
}

fn name(who: &str) -> Who {
    Who::Name(who.into())
}

fn top(store: &dyn GalleryStore, q: Vec<f32>, k: usize) -> Vec<Candidate> {
    store
        .identify(DLIB, &[q], k, TOLERANCE)
        .unwrap()
        .pop()
        .unwrap()
}

/// enrol, identify, list, rename, remove, and the model's rules, on an empty store.
pub fn enrol_identify_list_rename_remove(store: &dyn GalleryStore) {
    assert!(store.list().unwrap().is_empty());
    assert_eq!(store.embedder().unwrap(), None);
    assert!(top(store, face(0, 0.0), 3).is_empty());

    let ada = store.enrol(request("Ada", &[face(0, 0.0)])).unwrap();
    assert!(ada.created && ada.added == 1 && ada.samples == 1, "{ada:?}");
    let bob = store.enrol(request("Bob", &[face(1, 0.0)])).unwrap();
    assert!(bob.id > ada.id);
    assert_eq!(store.embedder().unwrap().as_deref(), Some(DLIB));

    // a second photo of Ada joins her record, and says so
    let again = store.enrol(request("Ada", &[face(0, 0.2)])).unwrap();
    assert_eq!((again.id, again.created, again.samples), (ada.id, false, 2));
    assert!(again.warnings.is_empty());

    // a stranger's face under Ada's name is refused, naming why; nothing is stored
    let err = store.enrol(request("Ada", &[face(5, 0.0)])).unwrap_err();
    assert!(
        matches!(&err, GalleryError::Suspicious(w) if matches!(w[0], EnrolWarning::FarFromOwn { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("--insist"), "{err}");
    // a new name for Bob's face is refused too: it names Bob
    let err = store.enrol(request("Robert", &[face(1, 0.1)])).unwrap_err();
    assert!(err.to_string().contains("Bob"), "{err}");
    assert_eq!(store.list().unwrap().len(), 2);
    // insisting keeps it, with the warning
    let kept = store
        .enrol(EnrolRequest {
            insist: true,
            ..request("Ada", &[face(5, 0.0)])
        })
        .unwrap();
    assert_eq!(kept.samples, 3);
    assert_eq!(kept.warnings.len(), 1);
    store.remove(&name("Ada")).unwrap();
    let ada = store
        .enrol(request("Ada", &[face(0, 0.0), face(0, 0.3)]))
        .unwrap();
    assert!(ada.created);

    // identification is per person, at the best sample's distance
    let found = top(store, face(0, 0.25), 5);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].name, "Ada");
    assert!((found[0].distance - 0.05).abs() < 1e-4, "{found:?}");
    assert!(found[0].known && !found[1].known);
    assert_eq!(found[1].name, "Bob");
    let stranger = top(store, face(9, 0.0), 1);
    assert_eq!(stranger.len(), 1);
    assert!(!stranger[0].known && stranger[0].distance > TOLERANCE);
    // several faces at once, in order
    let both = store
        .identify(DLIB, &[face(1, 0.0), face(0, 0.0)], 1, TOLERANCE)
        .unwrap();
    assert_eq!(
        (both[0][0].name.as_str(), both[1][0].name.as_str()),
        ("Bob", "Ada")
    );

    // rename: free names only, by name or #id
    assert_eq!(store.rename(&name("Bob"), "Robert").unwrap().id, bob.id);
    assert!(matches!(
        store.rename(&name("Ada"), "Robert"),
        Err(GalleryError::DuplicateName(_))
    ));
    assert!(matches!(
        store.rename(&name("Nobody"), "X"),
        Err(GalleryError::NoSuchPerson(_))
    ));
    assert!(store.rename(&Who::Id(bob.id), " ").is_err());
    assert!(store.rename(&Who::Id(bob.id), "#3").is_err());
    assert_eq!(top(store, face(1, 0.0), 1)[0].name, "Robert");

    // a bare number is a name, never an id
    let two = store.enrol(request("2", &[face(2, 0.0)])).unwrap();
    assert_ne!(two.id, 2);
    assert_eq!(Who::parse("2").unwrap(), name("2"));
    assert_eq!(Who::parse("#2").unwrap(), Who::Id(2));
    assert!(Who::parse("#two").is_err());
    assert_eq!(store.remove(&Who::parse("2").unwrap()).unwrap().id, two.id);
    assert!(matches!(
        store.remove(&name("2")),
        Err(GalleryError::NoSuchPerson(_))
    ));

    // remove by #id; ids are never reused
    let gone = store.remove(&Who::Id(bob.id)).unwrap();
    assert_eq!(gone.name, "Robert");
    let list = store.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].samples.len(), 2);
    let cy = store.enrol(request("Cy", &[face(3, 0.0)])).unwrap();
    assert!(cy.id > two.id);
    assert_eq!(top(store, face(3, 0.0), 1)[0].name, "Cy");
}

/// Wrong embedder, wrong length, NaN, empty names: refused with a message naming it, and
/// nothing stored.
pub fn bad_input_is_refused_and_nothing_stored(store: &dyn GalleryStore) {
    store.enrol(request("Ada", &[face(0, 0.0)])).unwrap();
    let before = store.export().unwrap();

    let other = EnrolRequest {
        embedder: "sface".into(),
        ..request("Dee", &[face(3, 0.0)])
    };
    let err = store.enrol(other).unwrap_err();
    assert!(
        matches!(err, GalleryError::EmbedderMismatch { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("sface"), "{err}");
    let err = store
        .identify("sface", &[face(0, 0.0)], 1, TOLERANCE)
        .unwrap_err();
    assert!(
        matches!(err, GalleryError::EmbedderMismatch { .. }),
        "{err}"
    );

    let err = store.enrol(request("Dee", &[vec![0.1; 3]])).unwrap_err();
    assert!(
        matches!(
            err,
            GalleryError::Dimension {
                expected: 128,
                got: 3,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("Dee-0.jpg"), "{err}");
    let err = store
        .identify(DLIB, &[vec![0.1; 64]], 1, TOLERANCE)
        .unwrap_err();
    assert!(matches!(err, GalleryError::Dimension { .. }), "{err}");

    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut e = face(3, 0.0);
        e[7] = bad;
        let err = store.enrol(request("Dee", &[e.clone()])).unwrap_err();
        assert!(
            matches!(err, GalleryError::NonFinite { index: 7, .. }),
            "{err}"
        );
        let err = store.identify(DLIB, &[e], 1, TOLERANCE).unwrap_err();
        assert!(matches!(err, GalleryError::NonFinite { .. }), "{err}");
    }
    for bad in ["", "   ", "#4", "a\nb"] {
        assert!(
            store.enrol(request(bad, &[face(3, 0.0)])).is_err(),
            "{bad:?}"
        );
    }
    assert!(store.enrol(request("Dee", &[])).is_err());
    assert_eq!(store.export().unwrap(), before);
}

/// export → import into another store gives the same people, ids and samples; importing
/// again changes nothing.
pub fn export_import_round_trip(from: &dyn GalleryStore, to: &dyn GalleryStore) {
    from.enrol(request("Ada", &[face(0, 0.0), face(0, 0.1)]))
        .unwrap();
    // text that each format must escape: a tab, a newline, a backslash, quotes, non-ASCII
    let awkward = "photos\\2024\tparty\nBob's \"best\" \u{e9}t\u{e9}.jpg";
    let mut bob = request("Bob O'Brien \\ \u{e9}", &[face(1, 0.0)]);
    bob.samples[0].source = awkward.into();
    bob.samples[0]
        .extra
        .insert("note".into(), serde_json::json!("a\tb\\c\nd"));
    from.enrol(bob).unwrap();
    let gone = from.enrol(request("Gone", &[face(2, 0.0)])).unwrap();
    from.remove(&Who::Id(gone.id)).unwrap();
    let mut data = from.export().unwrap();
    assert_eq!(data.persons.len(), 2);
    assert_eq!(data.persons[1].samples[0].source, awkward);
    data.persons[0]
        .extra
        .insert("badge".into(), serde_json::json!({"desk": "3\t\\4"}));
    assert_eq!(data.embedder.as_deref(), Some(DLIB));

    let report = to.import(data.clone()).unwrap();
    assert_eq!((report.created, report.samples, report.skipped), (2, 3, 0));
    assert_eq!(to.list().unwrap(), from.list().unwrap());
    let again = to.import(data.clone()).unwrap();
    assert_eq!(
        (again.created, again.merged, again.samples, again.skipped),
        (0, 2, 0, 3)
    );
    assert_eq!(to.export().unwrap().persons, data.persons);
    // the removed person's id is not handed out again after the move
    let next = to.enrol(request("Cy", &[face(3, 0.0)])).unwrap();
    assert!(next.id > gone.id, "{next:?}");
    assert_eq!(
        to.identify(DLIB, &[face(1, 0.0)], 1, TOLERANCE).unwrap()[0][0].name,
        "Bob O'Brien \\ \u{e9}"
    );
}

/// Threads enrolling at once through one store value lose nothing.
pub fn concurrent_enrolments_lose_nothing(
    store: &(dyn GalleryStore + 'static),
    threads: usize,
    each: usize,
) {
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || enrol_many(store, t, each));
        }
    });
    assert_everyone_once(store, threads * each);
}

/// The same with a connection of each writer's own, as separate processes would hold
/// (`open` connects to one gallery).
pub fn separate_writers_lose_nothing(
    open: &(dyn Fn() -> Box<dyn GalleryStore> + Sync),
    threads: usize,
    each: usize,
) {
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || enrol_many(&*open(), t, each));
        }
    });
    assert_everyone_once(&*open(), threads * each);
}

/// Enrols writer `t`'s `each` people: distinct people far apart, a spread on two axes.
fn enrol_many(store: &dyn GalleryStore, t: usize, each: usize) {
    for i in 0..each {
        let mut e = vec![0.0; 128];
        e[t] = 1.0;
        e[64 + i % 60] = 1.0 + (i / 60) as f32;
        let r = EnrolRequest {
            insist: true,
            ..request(&format!("t{t}-{i}"), &[e])
        };
        store.enrol(r).unwrap();
    }
}

fn assert_everyone_once(store: &dyn GalleryStore, people: usize) {
    let list = store.list().unwrap();
    assert_eq!(list.len(), people);
    let mut ids: Vec<_> = list.iter().map(|p| p.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), people);
}
