"""Self-tests of the Plex emulator, driven through the real plexapi (and raw requests) over HTTP."""

from __future__ import annotations

import socket
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.etree import ElementTree

import pytest
import requests
from plexapi.exceptions import BadRequest, NotFound, Unauthorized
from plexapi.server import PlexServer

from emulators.plex import PlexEmulator

TOKEN = 'secret-token'
PNG = b'\x89PNG\r\n\x1a\n' + b'\x00' * 32 + b'poster-bytes'
JPEG = b'\xff\xd8\xff\xe0' + b'\x00' * 32 + b'art-bytes'
TRICKY = (
    'First line\nSecond line\n\n'
    'Family 👨\u200d👩\u200d👧\u200d👦 · 日本語のテキスト · עברית ومرحبا · '
    '“quoted” \'single\' "double" & ampersand <not a tag> tab\there — dash'
)


@pytest.fixture
def plex():
    emulator = PlexEmulator(token=TOKEN, port=0, quiet=True).start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def movies(plex):
    return plex.add_section('Movies', locations=['/media/movies'], type='movie')


@pytest.fixture
def server(plex, movies):
    srv = PlexServer(plex.url, TOKEN, timeout=5)
    try:
        yield srv
    finally:
        srv._session.close()


def raw_get(plex, path, **headers):
    headers.setdefault('X-Plex-Token', TOKEN)
    return requests.get(plex.url + path, headers=headers, timeout=5)


# --------------------------------------------------------------------------- server and sections
def test_plexserver_reads_root_identity_and_sections(plex, server):
    assert server.machineIdentifier == plex.machine_identifier
    assert server.version == plex.version
    assert server.friendlyName
    assert server.myPlex is True
    identity = server.identity()
    assert identity.machineIdentifier == plex.machine_identifier
    sections = server.library.sections()
    assert [(s.key, s.title, s.type) for s in sections] == [(1, 'Movies', 'movie')]
    assert sections[0].locations == ['/media/movies']


def test_url_uses_loopback_and_real_port(plex):
    assert plex.url == f'http://127.0.0.1:{plex.port}'
    assert plex.port > 0


# --------------------------------------------------------------------------- listings and paging
def test_paging_5000_items_through_plexapi(plex, movies, server):
    plex.bulk_add(movies, ({'file': f'/media/movies/clip_{i:05d}.mp4', 'size': i} for i in range(5000)))
    section = server.library.section('Movies')
    plex.clear_log()
    items = section.search(container_start=0, container_size=1000)
    assert len(items) == 5000
    assert len({item.ratingKey for item in items}) == 5000
    assert plex.count(method='GET', path_prefix='/library/sections/1/all') == 5
    starts = [r.headers.get('X-Plex-Container-Start') for r in plex.requests]
    assert starts == ['0', '1000', '2000', '3000', '4000']


def test_paging_window_and_total_size(plex, movies, server):
    plex.bulk_add(movies, ({'file': f'/media/movies/clip_{i:05d}.mp4'} for i in range(300)))
    section = server.library.section('Movies')
    window = section.search(container_start=100, container_size=40, maxresults=90)
    assert [m.title for m in window] == [f'clip_{i:05d}' for i in range(100, 190)]
    assert section.totalViewSize() == 300
    # query-string paging, as plexapi's totalViewSize sends it, answers totalSize and offset
    resp = raw_get(plex, '/library/sections/1/all?X-Plex-Container-Start=290&X-Plex-Container-Size=50')
    root = ElementTree.fromstring(resp.content)
    assert (root.get('size'), root.get('totalSize'), root.get('offset')) == ('10', '300', '290')


def test_title_search_is_case_insensitive_substring(plex, movies, server):
    plex.add_item(movies, file='/media/movies/a.mp4', title='The Great Escape')
    plex.add_item(movies, file='/media/movies/b.mp4', title='Escape Plan')
    plex.add_item(movies, file='/media/movies/c.mp4', title='Something Else')
    section = server.library.section('Movies')
    assert sorted(m.title for m in section.search(title='escape')) == ['Escape Plan', 'The Great Escape']
    assert [m.title for m in section.search(filters={'title==': 'escape plan'})] == ['Escape Plan']
    assert [m.title for m in server.library.search(title='ELSE')] == ['Something Else']
    assert [m.title for m in server.search('great')] == ['The Great Escape']


def test_sorts_and_date_filters(plex, movies, server):
    a = plex.add_item(movies, file='/media/movies/a.mp4', title='Alpha', addedAt=1000, updatedAt=1000)
    b = plex.add_item(movies, file='/media/movies/b.mp4', title='Bravo', addedAt=3000, updatedAt=3000)
    c = plex.add_item(
        movies,
        file='/media/movies/c.mp4',
        title='Charlie',
        addedAt=2000,
        updatedAt=2000,
        originallyAvailableAt='2001-02-03',
    )
    section = server.library.section('Movies')
    assert [m.ratingKey for m in section.search(sort='addedAt:desc')] == [b, c, a]
    assert [m.ratingKey for m in section.search(sort='titleSort')] == [a, b, c]
    assert [m.ratingKey for m in section.search(sort='updatedAt')] == [a, c, b]
    # `>>=` is "after": strictly greater, like Plex
    assert sorted(
        m.ratingKey for m in section.search(filters={'updatedAt>>': datetime.fromtimestamp(2000)})
    ) == [b]
    assert sorted(
        m.ratingKey for m in section.search(filters={'addedAt>>': datetime.fromtimestamp(999)})
    ) == [a, b, c]
    assert [m.year for m in section.search(filters={'year': 2001})] == [2001]
    plex.update_item(a, summary='edited in Plex')
    recent = section.search(filters={'updatedAt>>': '-1d'})
    assert [m.ratingKey for m in recent] == [a]


def test_tag_filters_use_filter_choices(plex, movies, server):
    plex.add_item(movies, file='/media/movies/a.mp4', genres=['Drama', 'Comedy'], actors=['Ann'])
    plex.add_item(movies, file='/media/movies/b.mp4', genres=['Drama'], actors=['Bob'])
    section = server.library.section('Movies')
    assert sorted(c.title for c in section.listFilterChoices('genre')) == ['Comedy', 'Drama']
    assert [m.title for m in section.search(genre='Comedy')] == ['a']
    assert [m.title for m in section.search(actor='Bob')] == ['b']
    assert len(section.search(genre='drama')) == 2


def test_fetch_item_exposes_media_part_file_and_size(plex, movies, server):
    rk = plex.add_item(movies, file='/media/movies/Some Film (2001).mkv', size=123456789)
    item = server.fetchItem(rk)
    assert item.title == 'Some Film (2001)'  # a scan names an item after its file
    part = item.media[0].parts[0]
    assert part.file == '/media/movies/Some Film (2001).mkv'
    assert part.size == 123456789
    assert item.locations == ['/media/movies/Some Film (2001).mkv']
    assert item.librarySectionID == movies
    assert plex.find_by_file('/media/movies/Some Film (2001).mkv') == rk
    assert plex.find_by_file('/media/movies/missing.mkv') is None


def test_listing_truncates_tags_and_omits_field_locks(plex, movies, server):
    rk = plex.add_item(
        movies,
        file='/media/movies/a.mp4',
        genres=['g1', 'g2', 'g3', 'g4', 'g5'],
        actors=['a1', 'a2', 'a3', 'a4'],
        collections=['c1', 'c2', 'c3'],
        locked={'title'},
    )
    listed = server.library.section('Movies').all()[0]
    # As real Plex: genres and collections cut at 2, roles at 3 (see LISTING_TAG_LIMITS).
    assert [g.tag for g in listed.genres] == ['g1', 'g2']
    assert [c.tag for c in listed.collections] == ['c1', 'c2']
    assert [r.tag for r in listed.roles] == ['a1', 'a2', 'a3']
    listing = ElementTree.fromstring(raw_get(plex, '/library/sections/1/all').content)
    assert listing.find('Video/Field') is None
    assert listing.find('Video/Media/Part').get('file') == '/media/movies/a.mp4'
    full = server.fetchItem(rk)
    assert [g.tag for g in full.genres] == ['g1', 'g2', 'g3', 'g4', 'g5']
    assert [r.tag for r in full.actors] == ['a1', 'a2', 'a3', 'a4']
    assert full.isLocked('title')


# --------------------------------------------------------------------------- edits
def test_batch_edit_round_trips(plex, movies, server):
    rk = plex.add_item(movies, file='/media/movies/a.mp4', genres=['Old'], actors=['Ann'])
    before = plex.item(rk)['updatedAt']
    item = server.fetchItem(rk)
    plex.clear_log()
    item.batchEdits()
    item.editTitle('New Title').editSummary('A summary').editStudio('Studio X')
    item.editOriginallyAvailable('2021-03-04').editSortTitle('Title, New').editTagline('Tag line')
    item.addGenre(['Drama', 'Comedy']).addCollection('Studio X').addLabel('synced')
    item.editTags('actor', ['Bob', 'Cy'])
    item.saveEdits()
    assert plex.count(method='PUT') == 1  # one batched request
    edit = next(r for r in plex.requests if r.method == 'PUT')
    assert edit.path == '/library/sections/1/all' and edit.query['id'] == str(rk)

    item.reload()
    assert item.title == 'New Title'
    assert item.titleSort == 'Title, New'
    assert item.summary == 'A summary'
    assert item.studio == 'Studio X'
    assert item.tagline == 'Tag line'
    assert item.originallyAvailableAt.strftime('%Y-%m-%d') == '2021-03-04'
    assert [g.tag for g in item.genres] == ['Old', 'Drama', 'Comedy']
    assert [a.tag for a in item.actors] == ['Ann', 'Bob', 'Cy']
    assert [c.tag for c in item.collections] == ['Studio X']
    assert [lb.tag for lb in item.labels] == ['synced']

    snap = plex.item(rk)
    assert snap['title'] == 'New Title' and snap['studio'] == 'Studio X'
    assert snap['originallyAvailableAt'] == '2021-03-04'
    assert snap['genres'] == ['Old', 'Drama', 'Comedy']
    assert snap['actors'] == ['Ann', 'Bob', 'Cy']
    assert snap['collections'] == ['Studio X'] and snap['labels'] == ['synced']
    assert snap['updatedAt'] > before


def test_every_edit_plexapi_sends_for_a_movie_is_accepted(plex, movies, server):
    from emulators.plex.model import MOVIE_EDIT_FIELDS, MOVIE_EDIT_LOCKS, MOVIE_EDIT_TAGS

    rk = plex.add_item(movies, file='/media/movies/a.mp4')
    item = server.fetchItem(rk)
    item.batchEdits()
    item.editTitle('T').editSortTitle('T').editOriginalTitle('O').editEditionTitle('E').editSummary('S')
    item.editTagline('L').editStudio('St').editContentRating('R').editOriginallyAvailable('2020-02-02')
    item.editUserRating(8).editCriticRating(7).editAudienceRating(6).editAddedAt('2020-01-01')
    for tag in ('genre', 'collection', 'label', 'director', 'writer', 'producer', 'country'):
        item.editTags(tag, ['x'])
        item.editTags(tag, ['y'], remove=True)
    item.lockPoster().lockArt().lockTheme()
    item.saveEdits()
    edit = next(r for r in plex.requests if r.method == 'PUT')
    assert edit.status == 200
    sent = {k.split('[')[0].split('.')[0] for k in edit.query} - {'type', 'id'}
    assert sent == set(MOVIE_EDIT_FIELDS) | (set(MOVIE_EDIT_TAGS) - {'actor'}) | set(MOVIE_EDIT_LOCKS)
    snap = plex.item(rk)
    assert snap['originallyAvailableAt'] == '2020-02-02' and snap['year'] == 2020


@pytest.mark.parametrize(
    'param',
    [
        'year.value',
        'year.locked',
        'colour.value',
        'mood[0].tag.tag',
        'genres[0].tag.tag',
        'actor[0].tagging.text',
        'title',
    ],
)
def test_an_edit_parameter_plexapi_never_sends_is_refused(plex, movies, server, param):
    rk = plex.add_item(movies, file='/media/movies/a.mp4', title='Kept')
    item = server.fetchItem(rk)
    with pytest.raises(BadRequest):
        item.edit(**{'title.value': 'Changed', param: '2020'})
    assert plex.item(rk)['title'] == 'Kept'  # nothing of a refused edit is applied


def test_indexed_tags_replace_and_dash_removes(plex, movies, server):
    rk = plex.add_item(movies, file='/media/movies/a.mp4', genres=['A', 'Sci Fi', 'B,C', 'D'])
    item = server.fetchItem(rk)
    item.removeGenre(['Sci Fi', 'B,C'])
    assert plex.item(rk)['genres'] == ['A', 'D']
    item.edit(**{'genre[0].tag.tag': 'X', 'genre[1].tag.tag': 'Y', 'genre.locked': 1})
    assert plex.item(rk)['genres'] == ['X', 'Y']
    item.edit(**{'actor[0].tag.tag': 'Solo'})
    assert plex.item(rk)['actors'] == ['Solo']
    item.reload()
    assert [g.tag for g in item.genres] == ['X', 'Y']


def test_field_locks_follow_locked_flag(plex, movies, server):
    rk = plex.add_item(movies, file='/media/movies/a.mp4')
    item = server.fetchItem(rk)
    item.editTitle('Locked title')
    item.editSummary('Unlocked summary', locked=False)
    item.reload()
    assert item.isLocked('title') and not item.isLocked('summary')
    assert plex.item(rk)['locked'] == {'title'}
    item.edit(**{'title.locked': 0, 'studio.locked': 1})
    assert plex.item(rk)['locked'] == {'studio'}


def test_clearing_a_field(plex, movies, server):
    rk = plex.add_item(movies, file='/media/movies/a.mp4', studio='Old', summary='Old summary')
    item = server.fetchItem(rk)
    item.editStudio(None).editSummary('')
    snap = plex.item(rk)
    assert snap['studio'] is None and snap['summary'] == ''
    item.reload()
    assert item.studio is None and item.summary == ''


def test_bad_date_is_refused(plex, movies, server):
    rk = plex.add_item(movies, file='/media/movies/a.mp4')
    with pytest.raises(BadRequest):
        server.fetchItem(rk).editOriginallyAvailable('not-a-date')
    assert plex.count(status=400) == 1


def test_unicode_and_newlines_round_trip(plex, movies, server):
    rk = plex.add_item(movies, file='/media/movies/a.mp4', summary=TRICKY, title='Seed «ß» 🎬')
    item = server.fetchItem(rk)
    assert item.summary == TRICKY
    assert item.title == 'Seed «ß» 🎬'
    new_title = 'Ünïcödé 👩\u200d🔬 東京 עברית "q" & <t>'
    item.editTitle(new_title).editSummary(TRICKY + '\nmore')
    assert plex.item(rk)['summary'] == TRICKY + '\nmore'
    item.reload()
    assert item.title == new_title
    assert item.summary == TRICKY + '\nmore'
    listed = server.library.section('Movies').all()[0]
    assert listed.summary == TRICKY + '\nmore'


# --------------------------------------------------------------------------- images and refresh
class _ImageServer:
    def __init__(self, payload):
        payload_ = payload

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header('Content-Type', 'image/png')
                self.send_header('Content-Length', str(len(payload_)))
                self.end_headers()
                self.wfile.write(payload_)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = f'http://127.0.0.1:{self.httpd.server_address[1]}/cover.png'
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_upload_poster_by_filepath_and_url(plex, movies, server, tmp_path):
    rk = plex.add_item(movies, file='/media/movies/a.mp4')
    item = server.fetchItem(rk)
    poster_file = tmp_path / 'poster.png'
    poster_file.write_bytes(PNG)
    item.uploadPoster(filepath=str(poster_file))
    snap = plex.item(rk)
    assert snap['poster'] == PNG and snap['poster_uploads'] == 1

    images = _ImageServer(PNG + b'-from-url')
    try:
        item.uploadPoster(url=images.url)
    finally:
        images.close()
    snap = plex.item(rk)
    assert snap['poster'] == PNG + b'-from-url' and snap['poster_uploads'] == 2

    posters = item.posters()
    assert len(posters) == 2 and [p.selected for p in posters] == [False, True]
    item.reload()
    assert item.thumb and raw_get(plex, item.thumb).content == PNG + b'-from-url'
    item.setPoster(posters[0])
    assert plex.item(rk)['poster'] == PNG


def test_upload_art_by_bytes(plex, movies, server):
    rk = plex.add_item(movies, file='/media/movies/a.mp4')
    item = server.fetchItem(rk)
    item.uploadArt(filepath=JPEG)  # plexapi also accepts raw bytes
    snap = plex.item(rk)
    assert snap['art'] == JPEG and snap['art_uploads'] == 1 and snap['poster'] is None
    assert len(item.arts()) == 1


def test_refresh_and_partial_scan(plex, movies, server):
    rk = plex.add_item(movies, file='/media/movies/a.mp4')
    server.fetchItem(rk).refresh()
    assert plex.item(rk)['refreshes'] == 1
    section = server.library.section('Movies')
    section.update(path='/media/movies/new folder')
    section.update()
    assert plex.scans == [(movies, '/media/movies/new folder'), (movies, None)]


def test_scan_hook_can_discover_files(plex, movies, server):
    plex.scan_hook = lambda sid, path: plex.add_item(sid, file=f'{path}/found.mp4')
    server.library.section('Movies').update(path='/media/movies/x')
    assert plex.find_by_file('/media/movies/x/found.mp4') is not None


def test_changes_behind_the_plugins_back(plex, movies, server):
    rk = plex.add_item(movies, file='/media/movies/a.mp4', title='Original')
    before = plex.item(rk)['updatedAt']
    plex.update_item(rk, title='Edited in Plex', genres=['Manual'])
    item = server.fetchItem(rk)
    assert item.title == 'Edited in Plex' and [g.tag for g in item.genres] == ['Manual']
    assert plex.item(rk)['updatedAt'] > before
    plex.remove_item(rk)
    with pytest.raises(NotFound):
        server.fetchItem(rk)
    assert plex.find_by_file('/media/movies/a.mp4') is None


# --------------------------------------------------------------------------- faults
def _connect(port):
    with socket.create_connection(('127.0.0.1', port), timeout=2):
        pass


def test_down_refuses_connections_then_comes_back_on_same_port(plex, movies, server):
    port = plex.port
    server.library.sections()  # the session now holds a keep-alive connection
    plex.set_fault('down')
    with pytest.raises(ConnectionRefusedError):
        _connect(port)
    with pytest.raises(requests.exceptions.ConnectionError):
        server.query('/identity')
    with pytest.raises(requests.exceptions.ConnectionError):
        PlexServer(plex.url, TOKEN, timeout=2)
    logged = plex.count()
    plex.set_fault(None)
    assert plex.port == port
    _connect(port)
    assert server.query('/identity').get('machineIdentifier') == plex.machine_identifier
    assert plex.count() == logged + 1  # refused connections are not logged


def test_down_keeps_its_port_from_every_other_socket():
    """No other server or outgoing connection can take the port while Plex is down, so coming
    back on the same port cannot fail (the emulator holds it with a socket that does not listen)."""
    emulator = PlexEmulator(token=TOKEN, port=0, quiet=True).start()
    try:
        port = emulator.port
        emulator.set_fault('down')  # no connection was made: no TIME_WAIT holds the port for it
        with pytest.raises(ConnectionRefusedError):
            _connect(port)
        with socket.socket() as other, pytest.raises(OSError):
            other.bind(('127.0.0.1', port))
        emulator.set_fault(None)
        assert emulator.port == port
        _connect(port)
    finally:
        emulator.stop()
    emulator = PlexEmulator(token=TOKEN, port=0, quiet=True).start()
    emulator.set_fault('down')
    emulator.stop()
    with socket.socket() as other:
        other.bind(('127.0.0.1', emulator.port))  # stopped while down: the port is free again


def test_503_mode(plex, movies, server):
    plex.set_fault('503')
    with pytest.raises(BadRequest, match='503'):
        server.query('/identity')
    assert plex.count(status=503) == 1
    plex.set_fault('up')
    assert server.query('/identity') is not None


def test_slow_mode_times_out_a_short_plexapi_timeout(plex, movies):
    plex.set_fault('slow', delay=1.0)
    with pytest.raises(requests.exceptions.Timeout):
        PlexServer(plex.url, TOKEN, timeout=0.2)
    plex.set_fault('slow', delay=0.05)
    srv = PlexServer(plex.url, TOKEN, timeout=5)
    assert srv.machineIdentifier == plex.machine_identifier
    srv._session.close()


def test_db_loading_answers_root_but_not_library(plex, movies):
    plex.set_fault('db_loading')
    srv = PlexServer(plex.url, TOKEN, timeout=5)
    assert srv.identity().machineIdentifier == plex.machine_identifier
    with pytest.raises(BadRequest, match='503'):
        srv.library.sections()
    assert raw_get(plex, '/library/sections').status_code == 503
    plex.set_fault(None)
    assert len(PlexServer(plex.url, TOKEN, timeout=5).library.sections()) == 1
    srv._session.close()


def test_401_mode_and_wrong_token(plex, movies):
    with pytest.raises(Unauthorized):
        PlexServer(plex.url, 'wrong-token', timeout=5)
    assert raw_get(plex, '/library/sections', **{'X-Plex-Token': ''}).status_code == 401
    assert requests.get(plex.url + '/library/sections', timeout=5).status_code == 401
    assert requests.get(plex.url + f'/library/sections?X-Plex-Token={TOKEN}', timeout=5).status_code == 200
    plex.set_fault('401')
    with pytest.raises(Unauthorized):
        PlexServer(plex.url, TOKEN, timeout=5)
    assert plex.count(status=401) == 4


def test_identity_answers_without_a_token(plex):
    # Real Plex answers /identity to anyone; only the library needs the token.
    answer = requests.get(plex.url + '/identity', timeout=5)
    assert answer.status_code == 200
    assert ElementTree.fromstring(answer.content).get('machineIdentifier') == plex.machine_identifier
    assert raw_get(plex, '/identity', **{'X-Plex-Token': 'wrong'}).status_code == 200


def test_fail_next(plex, movies, server):
    plex.fail_next(2, status=503)
    for _ in range(2):
        with pytest.raises(BadRequest):
            server.query('/identity')
    assert server.query('/identity') is not None
    plex.fail_next(1, status=500)
    assert raw_get(plex, '/identity').status_code == 500
    assert plex.count(status=503) == 2 and plex.count(status=500) == 1


def test_fail_next_can_pick_the_method(plex, movies, server):
    plex.add_item(movies, file='/media/movies/a.mp4', title='Alpha')
    plex.fail_next(1, status=500, method='PUT')
    assert server.query('/identity') is not None  # a GET is not the one picked
    item = server.library.section('Movies').all()[0]
    with pytest.raises(BadRequest):
        item.editTitle('Refused once')
    item.editTitle('Accepted')
    assert plex.count(method='PUT', status=500) == 1
    assert server.fetchItem(item.ratingKey).title == 'Accepted'


def test_fail_next_can_pick_the_item(plex, movies, server):
    a = plex.add_item(movies, file='/media/movies/a.mp4', title='Alpha')
    b = plex.add_item(movies, file='/media/movies/b.mp4', title='Bravo')
    plex.fail_next(1, status=500, item=b)
    server.fetchItem(a).editTitle('Alpha edited')  # another item's requests pass
    with pytest.raises(BadRequest):
        server.fetchItem(b)  # GET /library/metadata/<b> is about b
    server.fetchItem(b).editTitle('Bravo edited')
    assert [plex.item(a)['title'], plex.item(b)['title']] == ['Alpha edited', 'Bravo edited']


def test_unknown_mode_is_rejected(plex):
    with pytest.raises(ValueError):
        plex.set_fault('sideways')


# --------------------------------------------------------------------------- request log
def test_request_log_counts_everything(plex, movies, server, capfd):
    plex.clear_log()
    plex.quiet = False
    server.query('/identity')
    assert raw_get(plex, '/no/such/endpoint').status_code == 404
    assert requests.get(plex.url + '/library', timeout=5).status_code == 401
    records = plex.requests
    assert [(r.method, r.path, r.status) for r in records] == [
        ('GET', '/identity', 200),
        ('GET', '/no/such/endpoint', 404),
        ('GET', '/library', 401),
    ]
    assert all(r.time > 0 and r.duration is not None and r.duration >= 0 for r in records)
    assert records[0].headers['X-Plex-Token'] == '***'
    assert plex.count(path_prefix='/identity') == 1
    assert plex.count(method='GET', status=404) == 1
    assert '/no/such/endpoint' in capfd.readouterr().err
    plex.clear_log()
    assert plex.count() == 0 and plex.requests == []


def test_query_values_are_decoded_and_token_redacted(plex, movies):
    requests.get(
        plex.url + '/library/sections/1/all', params={'title': 'a b&c', 'X-Plex-Token': TOKEN}, timeout=5
    )
    rec = plex.requests[-1]
    assert rec.query == {'title': 'a b&c', 'X-Plex-Token': '***'}
    assert rec.status == 200


# --------------------------------------------------------------------------- scale
def test_bulk_add_50000_items(plex, movies, server):
    plex.bulk_add(
        movies,
        (
            {'file': f'/media/movies/scene_{i:05d}.mp4', 'size': i, 'genres': ['g'], 'summary': f'scene {i}'}
            for i in range(50000)
        ),
    )
    section = server.library.section('Movies')
    assert section.totalViewSize() == 50000
    assert plex.find_by_file('/media/movies/scene_49999.mp4') is not None
    last = section.search(container_start=49990, container_size=1000, maxresults=10)
    assert [m.title for m in last] == [f'scene_{i:05d}' for i in range(49990, 50000)]
    resp = raw_get(
        plex, '/library/sections/1/all', **{'X-Plex-Container-Start': '0', 'X-Plex-Container-Size': '1000'}
    )
    root = ElementTree.fromstring(resp.content)
    assert root.get('totalSize') == '50000' and len(root.findall('Video')) == 1000


def test_raw_filter_operators_and_refusals(plex, movies):
    plex.add_item(movies, file='/media/movies/a.mp4', title='Alpha One', year=1999, studio='Acme')
    plex.add_item(movies, file='/media/movies/b.mp4', title='Beta Two', year=2005)

    def titles(query):
        resp = raw_get(plex, '/library/sections/1/all?' + query)
        assert resp.status_code == 200, query
        return sorted(v.get('title') for v in ElementTree.fromstring(resp.content).findall('Video'))

    assert titles('title!=alpha') == ['Beta Two']
    assert titles('title<=beta') == ['Beta Two']  # begins with
    assert titles('title>=one') == ['Alpha One']  # ends with
    assert titles('title==alpha%20one') == ['Alpha One']  # is
    assert titles('year>>=2000') == ['Beta Two']
    assert titles('year<<=2000') == ['Alpha One']
    assert titles('year!=1999') == ['Beta Two']
    assert titles('studio=acme') == ['Alpha One']
    assert titles('type=18') == []  # collections are Directory elements
    assert titles('sort=title:desc&limit=1') == ['Beta Two']
    assert raw_get(plex, '/library/sections/1/all?sort=nonsense').status_code == 400
    assert raw_get(plex, '/library/sections/1/all?year>>=soon').status_code == 400
    assert raw_get(plex, '/library/sections/9/all').status_code == 404
    assert raw_get(plex, '/library/metadata/999').status_code == 404
    put = requests.put(
        plex.url + '/library/sections/1/all?type=1&id=999&title.value=x',
        headers={'X-Plex-Token': TOKEN},
        timeout=5,
    )
    assert put.status_code == 404
    put = requests.put(
        plex.url + '/library/metadata/1?title.value=Item%20level&title.locked=1',
        headers={'X-Plex-Token': TOKEN},
        timeout=5,
    )
    assert put.status_code == 200
    assert plex.item(1)['title'] == 'Item level' and 'title' in plex.item(1)['locked']


def test_same_file_in_two_sections(plex, movies):
    other = plex.add_section('Other Videos', locations=['/media/movies'])
    first = plex.add_item(movies, file='/media/movies/a.mp4')
    second = plex.add_item(other, file='/media/movies/a.mp4')
    assert plex.find_by_file('/media/movies/a.mp4') == first
    assert plex.find_all_by_file('/media/movies/a.mp4') == [first, second]


def test_collections_are_objects_with_their_items(plex, movies, server):
    # plexapi: CollectionMixin.addCollection / removeCollection, LibrarySection.collections(),
    # Collection.items(). A collection tag makes the collection; an emptied one stays.
    a = plex.add_item(movies, file='/media/movies/a.mp4', title='A')
    plex.add_item(movies, file='/media/movies/b.mp4', title='B', collections=['Old'])
    name = 'Net, "Q" é'
    server.fetchItem(a).addCollection([name])
    section = server.library.section('Movies')
    assert sorted((c.title, c.childCount) for c in section.collections()) == [(name, 1), ('Old', 1)]
    collection = section.collection(name.upper())
    assert [i.title for i in collection.items()] == ['A']
    assert server.fetchItem(collection.ratingKey).title == name
    server.fetchItem(a).removeCollection([name])
    assert [i.title for i in section.collection(name).items()] == []
    assert plex.item(a)['collections'] == []


def test_user_rating_through_the_rate_endpoint(plex, movies, server):
    # plexapi: mixins/rating.py RatingMixin.rate -> PUT /:/rate?key=..&identifier=..&rating=..
    rk = plex.add_item(movies, file='/media/movies/a.mp4', title='A')
    item = server.fetchItem(rk)
    assert item.userRating is None
    item.rate(8.5)
    rated = server.fetchItem(rk)
    assert rated.userRating == 8.5 and rated.lastRatedAt is not None
    put = next(r for r in plex.requests if r.method == 'PUT')
    assert put.path == '/:/rate' and put.query['key'] == str(rk)
    assert put.query['identifier'] == 'com.plexapp.plugins.library'
    item.rate(None)  # plexapi sends rating=-1
    assert server.fetchItem(rk).userRating is None and plex.item(rk)['userRating'] is None
    bad = requests.put(
        plex.url + '/:/rate?key=%d&identifier=com.plexapp.plugins.library&rating=11' % rk,
        headers={'X-Plex-Token': TOKEN},
        timeout=5,
    )
    assert bad.status_code == 400


def test_content_rating_and_labels_edit_and_lock(plex, movies, server):
    # plexapi: ContentRatingMixin.editContentRating, LabelMixin.addLabel / removeLabel
    rk = plex.add_item(movies, file='/media/movies/a.mp4', title='A', labels=['Mine'])
    server.fetchItem(rk).editContentRating('XXX').addLabel(['Adults, only'])
    item = server.fetchItem(rk)
    assert item.contentRating == 'XXX'
    assert [lb.tag for lb in item.labels] == ['Mine', 'Adults, only']
    assert {'contentRating', 'label'} <= plex.item(rk)['locked']
    item.removeLabel(['Adults, only'])
    assert plex.item(rk)['labels'] == ['Mine']
