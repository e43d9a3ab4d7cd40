#![allow(clippy::explicit_auto_deref)] // `*` picks the `&str` element type for `pick`
//! Document templates: the text families a production AI gateway sees. `⟦slot⟧` marks a
//! generated value (see ctx.rs). Locales: 0 EN, 1 DE, 2 FR, 3 ES, 4 IT, 5 NL.

use super::ctx::Ctx;

// ------------------------------------------------------------------ support tickets

pub const TICKETS: [&[&str]; 6] = [
    &[
        "Subject: Double charge on order ⟦order⟧\n\nHi support,\n\nI was charged twice for order ⟦order⟧ on my card ⟦card⟧. Please refund one of the payments. You can reach me at ⟦phone⟧ or ⟦email⟧.\n\nThanks,\n⟦name⟧",
        "Ticket ⟦ticket⟧ | Priority: high | Product: ⟦product⟧\nCustomer: ⟦name⟧ (⟦email⟧)\nPhone: ⟦phone⟧\nShipping address: ⟦addr⟧, ⟦acity⟧\n\nThe ⟦product⟧ arrived damaged. Order ⟦order⟧, tracking ⟦badluhn⟧. I'd like a replacement shipped to the address above.",
        "I reset my password to ⟦pw⟧ yesterday but the app (⟦ver⟧) still says wrong password. Login is ⟦email⟧.",
        "hey, can't log into my account since the ⟦ver⟧ update. my username is ⟦email⟧ and i verified with my date of birth ⟦dob⟧ but it still says invalid. call me on ⟦mobile⟧ pls - ⟦given⟧",
        "Hello, I'm ⟦name⟧. Please update my billing details: new IBAN ⟦iban⟧ (account holder ⟦name⟧). Invoice ⟦inv⟧ should be paid from this account from ⟦month⟧ on.",
        "Refund request\nName: ⟦name⟧\nEmail: ⟦email⟧\nSSN (for the 1099 form): ⟦ssn⟧\nAddress: ⟦addr⟧, ⟦acity⟧\nOrder: ⟦order⟧ placed ⟦tsdmy⟧\nReason: wrong size, I ordered the ⟦month⟧ edition.",
        "My colleague ⟦name2⟧ (⟦email2⟧) placed the order for our ⟦city⟧ office but invoice ⟦inv⟧ was sent to me, ⟦name⟧. Can you re-issue it? Our office line is ⟦phone⟧.",
        "Customer ⟦nameup⟧ called about order ⟦hashorder⟧: card ending in ⟦card⟧ was declined although the bank says it's fine. Callback number ⟦phone⟧. Agent notes: customer is flying to ⟦city⟧ on ⟦reldate⟧, urgent.",
        "Hi, this is ⟦name⟧. The IRS letter says my social security number ⟦ssn⟧ doesn't match the name on file. My address is ⟦addr⟧, ⟦acity⟧. Please call ⟦usphone⟧.",
        "My home router (MAC ⟦mac⟧) keeps dropping. Public IP is ⟦ip⟧, IPv6 ⟦ipsix⟧. Account email ⟦email⟧.",
        "I never received my ⟦product⟧ (order ⟦order⟧). The courier says it was delivered to ⟦addr⟧ but I live at a different number. Please contact me at ⟦email⟧. — ⟦name⟧, DOB ⟦dob⟧ for verification",
    ],
    &[
        "Betreff: Doppelte Abbuchung Bestellung ⟦order⟧\n\nHallo Support-Team,\n\nmeine Kreditkarte ⟦card⟧ wurde für die Bestellung ⟦order⟧ zweimal belastet. Bitte erstatten Sie den Betrag auf mein Konto ⟦iban⟧.\nTelefonisch erreichen Sie mich unter ⟦phone⟧.\n\nMit freundlichen Grüßen\n⟦name⟧",
        "Kundennummer: ⟦hashorder⟧\nName: ⟦nameup⟧\nGeburtsdatum: ⟦dob⟧\nAnschrift: ⟦addr⟧, ⟦acity⟧\nE-Mail: ⟦email⟧\nAnliegen: Das ⟦product⟧ funktioniert seit dem Update auf ⟦ver⟧ nicht mehr.",
        "Hallo, ich bin ⟦name⟧ und wohne in der ⟦addr⟧. Mein Paket (Sendungsnummer ⟦badluhn⟧) ist nie angekommen. Bitte rufen Sie mich an: ⟦mobile⟧. Danke!",
        "Sehr geehrte Damen und Herren,\n\nbitte ändern Sie die Bankverbindung für Rechnung ⟦inv⟧:\nKontoinhaber: ⟦namerev⟧\nIBAN: ⟦iban⟧\n\nViele Grüße\n⟦name2⟧\n⟦company⟧ | Tel. ⟦phone⟧",
        "Mein neues Passwort ist ⟦pw⟧, trotzdem komme ich nicht in mein Konto (⟦email⟧). Kundennummer ⟦hashorder⟧.",
        "Kann mir jemand helfen? Ich (⟦name⟧, geb. ⟦dob⟧) bekomme seit ⟦month⟧ keine Rechnungen mehr an ⟦email⟧.",
        "Ticket ⟦ticket⟧: Frau ⟦family⟧ meldet, dass ihre Lieferung nach ⟦addr⟧, ⟦acity⟧ beschädigt war. Rückruf unter ⟦phone⟧ erbeten. Bestellung ⟦order⟧ vom ⟦tsdmy⟧.",
    ],
    &[
        "Objet : Double prélèvement commande ⟦order⟧\n\nBonjour,\n\nJ'ai été débité deux fois pour la commande ⟦order⟧ sur ma carte ⟦card⟧. Merci de me rembourser sur mon IBAN ⟦iban⟧.\nVous pouvez me joindre au ⟦phone⟧.\n\nCordialement,\n⟦name⟧",
        "Nom : ⟦nameup⟧\nDate de naissance : ⟦dob⟧\nAdresse : ⟦addr⟧, ⟦acity⟧\nCourriel : ⟦email⟧\nTél. : ⟦mobile⟧\nProblème : mon ⟦product⟧ ne s'allume plus depuis la mise à jour ⟦ver⟧.",
        "J'ai changé mon mot de passe en ⟦pw⟧ mais la connexion échoue toujours pour ⟦email⟧.",
        "Bonjour, je suis ⟦name⟧, né le ⟦dob⟧. Je n'arrive plus à me connecter avec l'adresse ⟦email⟧. Merci de me rappeler au ⟦mobile⟧.",
        "Madame, Monsieur,\n\nveuillez noter mon changement d'adresse : ⟦addr⟧, ⟦acity⟧. La facture ⟦inv⟧ est à établir au nom de ⟦name⟧.\n\nBien à vous,\n⟦name⟧",
        "Ma collègue ⟦name2⟧ (⟦email2⟧) a passé la commande pour notre bureau de ⟦city⟧, mais la facture ⟦inv⟧ m'est arrivée. Pouvez-vous la renvoyer ? ⟦given⟧",
        "Réclamation ⟦ticket⟧ — M. ⟦family⟧ signale un colis abîmé (commande ⟦order⟧). Livraison prévue au ⟦addr⟧. Joignable au ⟦phone⟧.",
    ],
    &[
        "Asunto: Cobro duplicado pedido ⟦order⟧\n\nHola,\n\nme han cobrado dos veces el pedido ⟦order⟧ en mi tarjeta ⟦card⟧. Por favor, devuélvanme el importe a mi IBAN ⟦iban⟧. Mi teléfono es ⟦phone⟧.\n\nUn saludo,\n⟦name⟧",
        "Nombre: ⟦name⟧\nFecha de nacimiento: ⟦dob⟧\nDirección: ⟦addr⟧, ⟦acity⟧\nCorreo: ⟦email⟧\nMóvil: ⟦mobile⟧\nIncidencia: el ⟦product⟧ no carga desde la versión ⟦ver⟧.",
        "Buenas, soy ⟦name⟧ (nacido el ⟦dob⟧). No puedo entrar en mi cuenta ⟦email⟧. ¿Me pueden llamar al ⟦mobile⟧? Gracias.",
        "Estimados señores:\n\nles ruego cambien la cuenta para la factura ⟦inv⟧.\nTitular: ⟦namerev⟧\nIBAN: ⟦iban⟧\n\nAtentamente,\n⟦name2⟧",
        "Incidencia ⟦ticket⟧: la Sra. ⟦family⟧ dice que el pedido ⟦order⟧ llegó a ⟦addr⟧ roto. Contacto: ⟦phone⟧, ⟦email⟧.",
    ],
    &[
        "Oggetto: Doppio addebito ordine ⟦order⟧\n\nBuongiorno,\n\nmi è stato addebitato due volte l'ordine ⟦order⟧ sulla carta ⟦card⟧. Vi prego di rimborsare sull'IBAN ⟦iban⟧. Potete contattarmi al ⟦phone⟧.\n\nCordiali saluti,\n⟦name⟧",
        "Nome e cognome: ⟦nameup⟧\nData di nascita: ⟦dob⟧\nIndirizzo: ⟦addr⟧, ⟦acity⟧\nEmail: ⟦email⟧\nCellulare: ⟦mobile⟧\nProblema: il ⟦product⟧ si blocca dopo l'aggiornamento ⟦ver⟧.",
        "Ciao, sono ⟦name⟧, nata il ⟦dob⟧. Non riesco ad accedere con ⟦email⟧. Mi richiamate al ⟦mobile⟧? Grazie",
        "Gentili signori,\n\nvi comunico il nuovo indirizzo di spedizione: ⟦addr⟧, ⟦acity⟧. La fattura ⟦inv⟧ va intestata a ⟦name⟧.\n\nDistinti saluti,\n⟦name⟧",
        "Segnalazione ⟦ticket⟧: il sig. ⟦family⟧ non ha ricevuto il ⟦product⟧ (ordine ⟦order⟧). Recapito: ⟦phone⟧.",
    ],
    &[
        "Onderwerp: Dubbele afschrijving bestelling ⟦order⟧\n\nHallo,\n\nIk ben twee keer gefactureerd voor bestelling ⟦order⟧ op mijn creditcard ⟦card⟧. Graag het bedrag terugstorten op ⟦iban⟧. Bereikbaar op ⟦phone⟧.\n\nMet vriendelijke groet,\n⟦name⟧",
        "Naam: ⟦name⟧\nGeboortedatum: ⟦dob⟧\nAdres: ⟦addr⟧, ⟦acity⟧\nE-mail: ⟦email⟧\nMobiel: ⟦mobile⟧\nProbleem: mijn ⟦product⟧ start niet meer sinds versie ⟦ver⟧.",
        "Hoi, ik ben ⟦name⟧ (geboren op ⟦dob⟧) en kan niet inloggen met ⟦email⟧. Bel me even op ⟦mobile⟧ aub.",
        "Geachte heer/mevrouw,\n\nWilt u factuur ⟦inv⟧ opnieuw sturen naar ⟦name2⟧, ⟦email2⟧? Ons kantoor in ⟦city⟧ is verhuisd naar ⟦addr⟧.\n\nGroet,\n⟦name⟧",
        "Melding ⟦ticket⟧: mevrouw ⟦family⟧ heeft haar ⟦product⟧ niet ontvangen (bestelling ⟦order⟧). Terugbellen op ⟦phone⟧.",
    ],
];

// ------------------------------------------------------------------ e-mails

const MAIL_HDR: [[&str; 4]; 6] = [
    ["From:", "To:", "Date:", "Subject:"],
    ["Von:", "An:", "Datum:", "Betreff:"],
    ["De :", "À :", "Date :", "Objet :"],
    ["De:", "Para:", "Fecha:", "Asunto:"],
    ["Da:", "A:", "Data:", "Oggetto:"],
    ["Van:", "Aan:", "Datum:", "Onderwerp:"],
];

const GREET_GIVEN: [&[&str]; 6] = [
    &["Hi", "Hello", "Dear"],
    &["Hallo", "Liebe/r", "Hi"],
    &["Bonjour", "Salut", "Chère"],
    &["Hola", "Querida", "Buenos días"],
    &["Ciao", "Gentile", "Buongiorno"],
    &["Beste", "Hoi", "Hallo"],
];
const GREET_FAMILY: [&[&str]; 6] = [
    &["Dear Ms", "Dear Mr", "Dear Dr"],
    &["Sehr geehrte Frau", "Sehr geehrter Herr", "Guten Tag Frau"],
    &["Madame", "Monsieur", "Bonjour Madame"],
    &["Estimada Sra.", "Estimado Sr.", "Sr."],
    &["Gentile dott.ssa", "Egregio sig.", "Gentile sig.ra"],
    &["Geachte mevrouw", "Geachte heer", "Beste mevrouw"],
];
const SIGNOFF: [&[&str]; 6] = [
    &[
        "Best regards,",
        "Kind regards,",
        "Cheers,",
        "Thanks,",
        "Best,",
    ],
    &[
        "Mit freundlichen Grüßen",
        "Viele Grüße",
        "Beste Grüße",
        "LG",
    ],
    &[
        "Cordialement,",
        "Bien à vous,",
        "Merci d'avance,",
        "Bien cordialement,",
    ],
    &["Saludos cordiales,", "Un saludo,", "Atentamente,"],
    &[
        "Cordiali saluti,",
        "Distinti saluti,",
        "Grazie,",
        "A presto,",
    ],
    &[
        "Met vriendelijke groet,",
        "Groetjes,",
        "Hartelijke groet,",
        "Mvg,",
    ],
];

const MAIL_BODY: [&[&str]; 6] = [
    &[
        "Thanks for the call yesterday. As discussed, attached is invoice ⟦inv⟧ for the ⟦month⟧ deliveries. Payment to ⟦iban⟧ within 30 days please.",
        "Quick reminder that our workshop in ⟦city⟧ starts on ⟦reldate⟧. If anything changes, call me on ⟦mobile⟧.",
        "Could you send the signed contract back to ⟦xemail⟧? Our legal team (⟦name3⟧) will countersign it this week.",
        "I've updated the ⟦product⟧ license; the new key is attached. Order reference ⟦order⟧.",
        "Please find my new contact details below, I moved to ⟦addr⟧, ⟦acity⟧ last month.",
    ],
    &[
        "danke für das Telefonat. Anbei die Rechnung ⟦inv⟧ für ⟦month⟧. Bitte überweisen Sie den Betrag auf ⟦iban⟧.",
        "kurze Erinnerung: Unser Workshop in ⟦city⟧ beginnt am ⟦reldate⟧. Bei Änderungen erreichen Sie mich unter ⟦mobile⟧.",
        "könnten Sie den unterschriebenen Vertrag an ⟦xemail⟧ schicken? Frau ⟦family3⟧ aus der Rechtsabteilung zeichnet gegen.",
        "meine neue Anschrift lautet ab sofort ⟦addr⟧, ⟦acity⟧.",
    ],
    &[
        "merci pour l'appel d'hier. Vous trouverez ci-joint la facture ⟦inv⟧ pour ⟦month⟧. Merci de régler sur l'IBAN ⟦iban⟧.",
        "petit rappel : notre atelier à ⟦city⟧ commence le ⟦reldate⟧. En cas de changement, appelez-moi au ⟦mobile⟧.",
        "pourriez-vous renvoyer le contrat signé à ⟦xemail⟧ ? ⟦name3⟧ du service juridique le contresignera.",
        "voici ma nouvelle adresse : ⟦addr⟧, ⟦acity⟧.",
    ],
    &[
        "gracias por la llamada. Adjunto la factura ⟦inv⟧ de ⟦month⟧. El pago, por favor, a la cuenta ⟦iban⟧.",
        "te recuerdo que el taller en ⟦city⟧ empieza el ⟦reldate⟧. Si hay cambios, llámame al ⟦mobile⟧.",
        "¿podrías enviar el contrato firmado a ⟦xemail⟧? ⟦name3⟧, de jurídico, lo firmará esta semana.",
        "mi nueva dirección es ⟦addr⟧, ⟦acity⟧.",
    ],
    &[
        "grazie per la telefonata. In allegato la fattura ⟦inv⟧ di ⟦month⟧. Il pagamento va effettuato sull'IBAN ⟦iban⟧.",
        "ti ricordo che il workshop a ⟦city⟧ inizia il ⟦reldate⟧. Per qualsiasi cosa chiamami al ⟦mobile⟧.",
        "potresti inviare il contratto firmato a ⟦xemail⟧? ⟦name3⟧ dell'ufficio legale lo controfirmerà.",
        "il mio nuovo indirizzo è ⟦addr⟧, ⟦acity⟧.",
    ],
    &[
        "bedankt voor het gesprek. In de bijlage vind je factuur ⟦inv⟧ voor ⟦month⟧. Graag betalen op ⟦iban⟧.",
        "even een herinnering: de workshop in ⟦city⟧ begint op ⟦reldate⟧. Bij wijzigingen bel me op ⟦mobile⟧.",
        "kun je het getekende contract naar ⟦xemail⟧ sturen? ⟦name3⟧ van juridische zaken tekent mee.",
        "mijn nieuwe adres is ⟦addr⟧, ⟦acity⟧.",
    ],
];

const QUOTE_HDR: [&str; 6] = [
    "On ⟦maildate⟧, ⟦name2⟧ <⟦email2⟧> wrote:",
    "Am ⟦tsdmy⟧ schrieb ⟦name2⟧ <⟦email2⟧>:",
    "Le ⟦tsdmy⟧, ⟦name2⟧ <⟦email2⟧> a écrit :",
    "El ⟦tsdmy⟧, ⟦name2⟧ <⟦email2⟧> escribió:",
    "Il giorno ⟦tsdmy⟧ ⟦name2⟧ <⟦email2⟧> ha scritto:",
    "Op ⟦tsdmy⟧ schreef ⟦name2⟧ <⟦email2⟧>:",
];

pub fn email(c: &mut Ctx) -> String {
    let l = c.loc;
    let h = MAIL_HDR[l];
    let mut t = String::new();
    if c.r.chance(0.8) {
        t.push_str(&format!(
            "{} ⟦name⟧ <⟦email⟧>\n{} ⟦name2⟧ <⟦email2⟧>\n",
            h[0], h[1]
        ));
        if c.r.chance(0.3) {
            t.push_str("Cc: ⟦name4⟧ <⟦email4⟧>\n");
        }
        t.push_str(&format!(
            "{} ⟦maildate⟧\n{} {}\n\n",
            h[2],
            h[3],
            c.r.pick(&[
                "Re: invoice ⟦inv⟧",
                "⟦month⟧ / ⟦product⟧",
                "Fwd: contract",
                "AW: Termin",
                "RE: ⟦order⟧"
            ])
        ));
    }
    let greet = if c.r.chance(0.5) {
        format!("{} ⟦given2⟧,", c.r.pick(GREET_GIVEN[l]))
    } else {
        format!("{} ⟦family2⟧,", c.r.pick(GREET_FAMILY[l]))
    };
    t.push_str(&greet);
    t.push_str("\n\n");
    t.push_str(*c.r.pick(MAIL_BODY[l]));
    t.push_str("\n\n");
    t.push_str(*c.r.pick(SIGNOFF[l]));
    t.push('\n');
    t.push_str(match c.r.below(4) {
        0 => "⟦name⟧",
        1 => "⟦name⟧\n⟦title⟧ | ⟦company⟧\n⟦phone⟧",
        2 => "⟦name⟧\n⟦company⟧\n⟦addr⟧, ⟦acity⟧\nTel. ⟦phone⟧ | Mobile ⟦mobile⟧\n⟦email⟧",
        _ => "--\n⟦nameup⟧\n⟦title⟧\nM: ⟦mobile⟧",
    });
    if c.r.chance(0.3) {
        t.push_str("\n\n");
        t.push_str(QUOTE_HDR[l]);
        t.push_str("\n> ");
        t.push_str(*c.r.pick(&[
            "Any update on ⟦order⟧?",
            "See you in ⟦city⟧!",
            "Bitte um Rückmeldung.",
            "Merci !",
            "Grazie mille.",
        ]));
    }
    c.fill(&t)
}

// ------------------------------------------------------------------ CSV

pub fn csv(c: &mut Ctx) -> String {
    let l = c.loc;
    let d = if l == 0 || c.r.chance(0.3) { ',' } else { ';' };
    let rows = c.r.range(3, 7);
    let schema = c.r.below(4);
    let hdr: &[&str] = match (schema, l) {
        (0, 1) => &["Name", "E-Mail", "Telefon", "Stadt"],
        (0, 2) => &["Nom", "Courriel", "Téléphone", "Ville"],
        (0, 3) => &["Nombre", "Correo", "Teléfono", "Ciudad"],
        (0, 4) => &["Nome", "Email", "Telefono", "Città"],
        (0, 5) => &["Naam", "E-mail", "Telefoon", "Plaats"],
        (0, _) => &["name", "email", "phone", "city"],
        (1, _) => &["id", "full_name", "email", "iban", "created_at"],
        (2, 1) => &[
            "Nachname",
            "Vorname",
            "Geburtsdatum",
            "Telefon",
            "Straße",
            "Ort",
        ],
        (2, 2) => &[
            "Nom",
            "Prénom",
            "Date de naissance",
            "Téléphone",
            "Adresse",
            "Ville",
        ],
        (2, 3) => &[
            "Apellidos",
            "Nombre",
            "Fecha de nacimiento",
            "Teléfono",
            "Dirección",
            "Localidad",
        ],
        (2, 4) => &[
            "Cognome",
            "Nome",
            "Data di nascita",
            "Telefono",
            "Indirizzo",
            "Comune",
        ],
        (2, 5) => &[
            "Achternaam",
            "Voornaam",
            "Geboortedatum",
            "Telefoon",
            "Adres",
            "Woonplaats",
        ],
        (2, _) => &[
            "last_name",
            "first_name",
            "date_of_birth",
            "phone",
            "street",
            "city",
        ],
        _ => &["customer", "email", "card_number", "amount", "order_id"],
    };
    let quote = |f: String| -> String {
        if f.contains(d) || f.contains('"') || f.contains(',') && d == ',' {
            format!("\"{}\"", f.replace('"', "\"\""))
        } else {
            f
        }
    };
    let mut out = hdr.join(&d.to_string());
    out.push('\n');
    for i in 0..rows {
        let p = i + 1;
        let fields: Vec<String> = match schema {
            0 => vec![
                c.slot(&format!("nameany{p}")),
                c.slot(&format!("email{p}")),
                c.slot(&format!("phone{p}")),
                c.slot(&format!("city{p}")),
            ],
            1 => vec![
                c.slot(&format!("uuid{p}")),
                c.slot(&format!("nameany{p}")),
                c.slot(&format!("email{p}")),
                c.slot(&format!("iban{p}")),
                c.slot(&format!("ts{p}")),
            ],
            2 => {
                let fam = if c.r.chance(0.3) {
                    c.slot(&format!("family{p}")).to_uppercase()
                } else {
                    c.slot(&format!("family{p}"))
                };
                if fam != c.slot(&format!("family{p}")) {
                    c.p("PERSON", fam.clone());
                }
                let dob = if c.r.chance(0.3) {
                    c.slot(&format!("dobiso{p}"))
                } else {
                    c.slot(&format!("dob{p}"))
                };
                vec![
                    fam,
                    c.slot(&format!("given{p}")),
                    dob,
                    c.slot(&format!("phone{p}")),
                    c.slot(&format!("addr{p}")),
                    c.slot(&format!("acity{p}")),
                ]
            }
            _ => vec![
                c.slot(&format!("nameany{p}")),
                c.slot(&format!("email{p}")),
                c.slot(&format!("card{p}")),
                c.slot("amount"),
                c.slot(&format!("order{p}")),
            ],
        };
        let line: Vec<String> = fields.into_iter().map(&quote).collect();
        out.push_str(&line.join(&d.to_string()));
        out.push('\n');
    }
    // the upper-cased family names replaced the mixed-case ones in the text
    let text = out.clone();
    c.pii
        .retain(|(e, v)| *e != "PERSON" || text.contains(v.as_str()));
    if c.r.chance(0.5) {
        let pre = *c.r.pick(&[
            "Here is the export from our CRM:\n\n",
            "Can you deduplicate these rows?\n",
            "Clean up this CSV and fix the phone formats:\n\n",
            "Bitte diese Liste prüfen:\n",
            "",
        ]);
        format!("{pre}{out}")
    } else {
        out
    }
}

// ------------------------------------------------------------------ logs

const LOG_LINES: &[&str] = &[
    "⟦logts⟧ INFO  [req ⟦uuid⟧] POST /v1/chat/completions 200 ⟦ms⟧ms user=⟦xemail⟧ ip=⟦ip⟧",
    "⟦logts⟧ WARN  auth: invalid token for user_id=⟦uid⟧ from ⟦ip⟧",
    "⟦logts⟧ DEBUG outgoing headers: {\"authorization\": \"Bearer ⟦bearer⟧\", \"content-type\": \"application/json\"}",
    "⟦ip⟧ - - [15/Mar/2024:10:22:31 +0000] \"GET /api/v2/users?email=⟦xemail⟧ HTTP/1.1\" 200 512 \"-\" \"Mozilla/5.0 (X11; Linux x86_64)\"",
    "⟦logts⟧ ERROR payment failed card=⟦card⟧ order=⟦order⟧ reason=do_not_honor",
    "⟦logts⟧ INFO  connection from [⟦ipsix⟧]:51234 accepted",
    "⟦logts⟧ INFO  deploy ⟦shortsha⟧ version ⟦ver⟧ listening on ⟦loopback⟧",
    "⟦logts⟧ WARN  user ⟦name⟧ <⟦email⟧> exceeded quota (tenant ⟦uuid2⟧)",
    "{\"ts\":\"⟦ts⟧\",\"level\":\"info\",\"msg\":\"login ok\",\"email\":\"⟦xemail2⟧\",\"client_ip\":\"⟦ip2⟧\",\"trace_id\":\"⟦traceid⟧\"}",
    "⟦logts⟧ ERROR sqlalchemy.exc.OperationalError: could not connect to postgresql://⟦dbuser⟧:⟦pwurl⟧@⟦dbhost⟧:5432/⟦db⟧",
    "⟦logts⟧ DEBUG sms.send to=⟦phone⟧ template=otp_login",
    "⟦logts⟧ INFO  kyc passed customer=⟦name2⟧ dob=⟦dobiso⟧",
    "⟦logts⟧ WARN  rate limited api_key=⟦key⟧ route=/v1/embeddings",
    "⟦logts⟧ INFO  dhcp lease ⟦privip⟧ -> ⟦mac⟧ (24h)",
    "⟦logts⟧ INFO  GC pause 12ms heap=512MB build ⟦sha⟧",
    "⟦logts⟧ DEBUG cache hit key=session:⟦uuid3⟧ ttl=⟦epoch⟧",
    "java.sql.SQLException: Access denied for user 'app'@'⟦ip3⟧' (using password: YES)\n\tat com.mysql.cj.jdbc.exceptions.SQLError.createSQLException(SQLError.java:129)\n\tat com.mysql.cj.jdbc.ConnectionImpl.createNewIO(ConnectionImpl.java:836)",
    "Traceback (most recent call last):\n  File \"/srv/app/billing.py\", line 88, in charge\n    stripe.Charge.create(amount=amt, customer=cust)\nstripe.error.AuthenticationError: Invalid API Key provided: ⟦key_stripe⟧",
    "⟦logts⟧ ERROR webhook delivery failed: POST https://hooks.⟦domain⟧/in?token=⟦jwt⟧ -> 401",
    "⟦logts⟧ INFO  user signup ⟦xemail3⟧ from ⟦ip4⟧ (country=DE, ua=okhttp/4.12.0)",
    "⟦logts⟧ INFO  wlan0: STA ⟦mac⟧ IEEE 802.11: associated (aid 3)",
    "⟦logts⟧ DEBUG arp: ⟦ip5⟧ is-at ⟦mac2⟧ on eth0",
    "⟦logts⟧ WARN  kyc mismatch applicant=⟦name3⟧ ssn=⟦ssn⟧ (score 0.41)",
];

pub fn logs(c: &mut Ctx) -> String {
    let n = c.r.range(4, 10);
    let mut order: Vec<usize> = (0..LOG_LINES.len()).collect();
    c.r.shuffle(&mut order);
    let mut lines: Vec<&str> = order[..n].iter().map(|i| LOG_LINES[*i]).collect();
    // every log item carries at least one personal value
    if !lines
        .iter()
        .any(|l| l.contains("⟦xemail⟧") || l.contains("⟦ip⟧") || l.contains("⟦name⟧"))
    {
        lines.push(LOG_LINES[0]);
    }
    // one timestamp per line
    let lines: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| l.replace("⟦logts⟧", &format!("⟦logts{}⟧", i + 1)))
        .collect();
    let t = lines.join("\n");
    let t = c.fill(&t);
    if c.r.chance(0.4) {
        format!(
            "{}\n\n{}",
            c.r.pick(&[
                "Why is this failing?",
                "Can you explain these logs?",
                "Find the root cause:",
                "Was bedeutet dieser Fehler?",
                "Qu'est-ce qui ne va pas ici ?"
            ]),
            t
        )
    } else {
        t
    }
}

// ------------------------------------------------------------------ config / secrets

pub const ENV_FILES: &[&str] = &[
    "# ⟦app⟧ production config\nNODE_ENV=production\nPORT=3000\nDATABASE_URL=postgres://⟦dbuser⟧:⟦pwurl⟧@⟦dbhost⟧:5432/⟦db⟧\nOPENAI_API_KEY=⟦key_openai⟧\nSTRIPE_SECRET_KEY=⟦key_stripe⟧\nSENTRY_RELEASE=⟦sha⟧\nLOG_LEVEL=info",
    "AWS_ACCESS_KEY_ID=⟦akia⟧\nAWS_SECRET_ACCESS_KEY=⟦awssecret⟧\nAWS_DEFAULT_REGION=eu-central-1\nS3_BUCKET=⟦app⟧-uploads",
    "ANTHROPIC_API_KEY=⟦key_anthropic⟧\nGROQ_API_KEY=⟦key_groq⟧\nOPENROUTER_API_KEY=⟦key_openrouter⟧\nXAI_API_KEY=⟦key_xai⟧\nHF_TOKEN=⟦key_hf⟧\nMODEL=claude-sonnet-4-5",
    "export GITHUB_TOKEN=⟦key_github⟧\nexport SLACK_BOT_TOKEN=⟦key_slack⟧\nexport GOOGLE_API_KEY=⟦key_google⟧\nexport APP_VERSION=⟦ver⟧",
    "# .env.example — copy to .env\nOPENAI_API_KEY=⟦placeholder_key⟧\nSUPPORT_EMAIL=⟦placeholder_email⟧\nAPI_BASE=http://⟦loopback⟧\nBUILD=⟦shortsha⟧",
    "SMTP_HOST=smtp.⟦domain⟧\nSMTP_USER=⟦xemail⟧\nSMTP_PASSWORD=⟦pw⟧\nADMIN_PHONE=⟦phone⟧",
    "FIREBASE_PROJECT_ID=⟦app⟧-prod\nFIREBASE_PRIVATE_KEY=\"⟦pemesc⟧\"\nFIREBASE_CLIENT_EMAIL=firebase-adminsdk@⟦app⟧-prod.iam.gserviceaccount.com",
    "services:\n  db:\n    image: postgres:16.2\n    environment:\n      POSTGRES_USER: ⟦dbuser⟧\n      POSTGRES_PASSWORD: ⟦pw⟧\n    ports:\n      - \"5432:5432\"\n  api:\n    image: ghcr.io/acme/api@sha256:⟦digest⟧\n    environment:\n      - OPENAI_API_KEY=⟦key_openai⟧\n      - REDIS_URL=redis://:⟦pwurl⟧@redis:6379/0\n    ports:\n      - \"8080:8080\"",
    "version: \"3.9\"\nservices:\n  worker:\n    image: ⟦app⟧:⟦ver⟧\n    environment:\n      MONGO_URL: mongodb+srv://⟦dbuser⟧:⟦pwurl⟧@cluster0.x7k2p.mongodb.net/prod\n      JWT_SAMPLE: ⟦jwt⟧\n      ANTHROPIC_API_KEY: ⟦key_anthropic⟧",
    "[default]\naws_access_key_id = ⟦akia⟧\naws_secret_access_key = ⟦awssecret⟧\nregion = eu-west-1\n\n[profile ci]\nrole_arn = arn:aws:iam::⟦uid⟧:role/ci",
    "[database]\nhost = \"⟦dbhost⟧\"\nuser = \"⟦dbuser⟧\"\npassword = \"⟦pw⟧\"\n\n[openai]\napi_key = \"⟦key⟧\"\norganization = \"org-⟦traceid⟧\"",
];

pub const CODE: &[&str] = &[
    "from openai import OpenAI\n\nclient = OpenAI(api_key=\"⟦key_openai⟧\")\nresp = client.chat.completions.create(model=\"gpt-4o-mini\", messages=[{\"role\": \"user\", \"content\": \"hi\"}])\nprint(resp.choices[0].message.content)",
    "import anthropic\n\nclient = anthropic.Anthropic(\n    api_key=\"⟦key_anthropic⟧\",\n)\nmsg = client.messages.create(model=\"claude-3-5-sonnet-20241022\", max_tokens=1024, messages=[{\"role\": \"user\", \"content\": \"Hello\"}])",
    "const stripe = require('stripe')('⟦key_stripe⟧');\n\nconst session = await stripe.checkout.sessions.create({\n  line_items: [{ price: 'price_1OqXyz', quantity: 1 }],\n  mode: 'payment',\n  success_url: 'http://⟦loopback⟧/success',\n});",
    "let client = reqwest::Client::new();\nlet res = client\n    .post(\"https://api.groq.com/openai/v1/chat/completions\")\n    .bearer_auth(\"⟦key_groq⟧\")\n    .json(&body)\n    .send()\n    .await?;",
    "s3 = boto3.client(\n    \"s3\",\n    aws_access_key_id=\"⟦akia⟧\",\n    aws_secret_access_key=\"⟦awssecret⟧\",\n)\ns3.upload_file(\"report.csv\", \"⟦app⟧-exports\", \"2024/report.csv\")",
    "curl https://api.openai.com/v1/chat/completions \\\n  -H \"Content-Type: application/json\" \\\n  -H \"Authorization: Bearer ⟦key_openai⟧\" \\\n  -d '{\"model\": \"gpt-4o\", \"messages\": [{\"role\": \"user\", \"content\": \"Say hi\"}]}'",
    "curl https://api.anthropic.com/v1/messages \\\n  -H \"x-api-key: ⟦key_anthropic⟧\" \\\n  -H \"anthropic-version: 2023-06-01\" \\\n  -H \"content-type: application/json\" \\\n  -d '{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":256,\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}'",
    "curl -s https://api.⟦domain⟧/v1/me -H \"Authorization: Bearer ⟦bearer⟧\"",
    "name: deploy\non: [push]\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - run: ./deploy.sh\n        env:\n          GH_TOKEN: ⟦key_github_pat⟧\n          SLACK_TOKEN: ⟦key_slack⟧",
    "var connStr = \"Server=tcp:⟦app⟧.database.windows.net,1433;Initial Catalog=prod;User ID=sqladmin;Password=⟦pw⟧;Encrypt=True;\";\nusing var conn = new SqlConnection(connStr);",
    "String url = \"jdbc:mysql://⟦dbhost⟧:3306/⟦db⟧?user=⟦dbuser⟧&password=⟦pwurl⟧&useSSL=true\";\nConnection conn = DriverManager.getConnection(url);",
    "config = {\n    \"host\": \"⟦dbhost⟧\",\n    \"user\": \"⟦dbuser⟧\",\n    \"password\": \"⟦pw⟧\",\n    \"port\": 5432,\n}\nconn = psycopg2.connect(**config)",
    "genai.configure(api_key=\"⟦key_google⟧\")\nmodel = genai.GenerativeModel(\"gemini-1.5-pro\")",
    "HF_TOKEN = \"⟦key_hf⟧\"\nmodel = AutoModel.from_pretrained(\"meta-llama/Llama-3.1-8B\", token=HF_TOKEN)\n# pip install ⟦=sk-learn⟧ is wrong, use scikit-learn==⟦=1.4.2⟧",
    "fetch(\"https://openrouter.ai/api/v1/chat/completions\", {\n  method: \"POST\",\n  headers: { Authorization: \"Bearer ⟦key_openrouter⟧\", \"Content-Type\": \"application/json\" },\n  body: JSON.stringify({ model: \"x-ai/grok-2\", messages }),\n});",
    "const xai = new OpenAI({ apiKey: \"⟦key_xai⟧\", baseURL: \"https://api.x.ai/v1\" });",
    "# deploy key for the build box\ncat > ~/.ssh/id_deploy <<'EOF'\n⟦pem⟧\nEOF\nchmod 600 ~/.ssh/id_deploy",
    "{\n  \"type\": \"service_account\",\n  \"project_id\": \"⟦app⟧-prod\",\n  \"private_key_id\": \"⟦sha⟧\",\n  \"private_key\": \"⟦pemesc⟧\\n\",\n  \"client_email\": \"svc@⟦app⟧-prod.iam.gserviceaccount.com\"\n}",
    "const token = \"⟦jwt⟧\";\nconst res = await fetch(`/api/orders/${id}`, { headers: { Authorization: `Bearer ${token}` } });",
    "provider \"aws\" {\n  region     = \"us-east-1\"\n  access_key = \"⟦akia⟧\"\n  secret_key = \"⟦awssecret⟧\"\n}",
    "PRIVATE_KEY = \"\"\"⟦pem⟧\"\"\"\n\ndef sign(payload: bytes) -> bytes:\n    key = serialization.load_pem_private_key(PRIVATE_KEY.encode(), password=None)\n    return key.sign(payload, padding.PKCS1v15(), hashes.SHA256())",
    "Is this the right format for the deploy key? I pasted it into the CI secret:\n\n⟦pem⟧",
    "legacy_key = \"⟦key_openai_legacy⟧\"  # TODO rotate\nopenai.api_key = legacy_key",
    ".btn-primary {\n  color: ⟦color⟧;\n  background: ⟦color2⟧;\n}\n/* build ⟦shortsha⟧ */\n// API key is read from env: ⟦placeholder_key⟧",
];

pub fn config_or_code(c: &mut Ctx, code: bool) -> String {
    let tpl = if code {
        *c.r.pick(CODE)
    } else {
        *c.r.pick(ENV_FILES)
    };
    let mut t = c.fill(tpl);
    if code && c.r.chance(0.3) {
        t = format!("{t}\n# see ⟦uuid⟧ / ⟦ver⟧ / ⟦skword⟧");
        t = c.fill(&t);
    }
    if c.r.chance(0.5) {
        let pre = *c.r.pick(&[
            "Why does this not work?\n\n```\n",
            "Review this config:\n```\n",
            "Can you convert this to TypeScript?\n```\n",
            "Warum bekomme ich 401?\n```\n",
            "Pourquoi ça plante ?\n```\n",
        ]);
        format!("{pre}{t}\n```")
    } else {
        t
    }
}

// ------------------------------------------------------------------ git log

pub fn git_log(c: &mut Ctx) -> String {
    let mut t = String::new();
    match c.r.below(3) {
        0 => {
            let n = c.r.range(2, 4);
            for i in 0..n {
                let p = i + 1;
                t.push_str(&format!("commit ⟦sha{p}⟧\nAuthor: ⟦name{p}⟧ <⟦email{p}⟧>\nDate:   {} 2024 +0100\n\n    {} (#⟦prnum⟧)\n", c.r.pick(&["Fri Mar 15 10:22:31", "Mon Jan 8 09:01:12", "Wed Jul 3 17:45:09"]), c.r.pick(&["fix(auth): handle expired refresh tokens", "feat: add IBAN validation", "chore(deps): bump serde to 1.0.197", "docs: update README"])));
                if c.r.chance(0.4) {
                    let q = p + 5;
                    t.push_str(&format!("\n    Co-authored-by: ⟦name{q}⟧ <⟦email{q}⟧>\n"));
                }
                if c.r.chance(0.2) {
                    t.push_str(&format!("    Signed-off-by: ⟦name{p}⟧ <⟦email{p}⟧>\n"));
                }
                t.push('\n');
            }
        }
        1 => {
            t.push_str("$ git shortlog -sne\n");
            for i in 0..c.r.range(3, 6) {
                t.push_str(&format!(
                    "{:>6}\t⟦name{}⟧ <⟦email{}⟧>\n",
                    c.r.range(1, 400),
                    i + 1,
                    i + 1
                ));
            }
        }
        _ => {
            for i in 0..c.r.range(3, 5) {
                t.push_str(&format!(
                    "⟦shortsha{}⟧ (⟦name{}⟧ 2024-0{}-1{} 1{}:2{}:31 +0100 {}) {}\n",
                    i + 1,
                    i + 1,
                    c.r.range(1, 9),
                    c.r.range(0, 9),
                    c.r.range(0, 9),
                    c.r.range(0, 9),
                    c.r.range(10, 400),
                    c.r.pick(&[
                        "let total = items.iter().sum();",
                        "return Err(Error::Timeout);",
                        "    validate(&iban)?;",
                        "}"
                    ])
                ));
            }
        }
    }
    c.fill(&t)
}

// ------------------------------------------------------------------ attendees / meeting notes

const ATT_LABELS: [[&str; 4]; 6] = [
    ["Meeting notes", "Attendees", "Apologies", "Action items"],
    ["Protokoll", "Teilnehmer", "Entschuldigt", "Aufgaben"],
    ["Compte rendu", "Participants", "Excusés", "Actions"],
    ["Acta de reunión", "Asistentes", "Ausentes", "Tareas"],
    ["Verbale", "Partecipanti", "Assenti", "Azioni"],
    ["Notulen", "Aanwezig", "Afwezig", "Actiepunten"],
];

pub fn attendees(c: &mut Ctx) -> String {
    let lab = ATT_LABELS[c.loc];
    let n = c.r.range(3, 8);
    let mut names = Vec::new();
    for i in 1..=n {
        let mut s = format!("⟦nameany{i}⟧");
        match c.r.below(6) {
            0 => s.push_str(&format!(" <⟦email{i}⟧>")),
            1 => s.push_str(&format!(
                " ({})",
                c.r.pick(&["PM", "Legal", "Finance", "CTO", "Sales", "extern"])
            )),
            _ => {}
        }
        names.push(s);
    }
    let absent = c.r.range(0, 2).min(n - 2);
    let (present, away) = names.split_at(n - absent);
    let sep = *c.r.pick(&[", ", "; ", "\n- ", "\n* ", " | "]);
    let lead = if sep.starts_with('\n') { sep } else { " " };
    let mut t = format!(
        "{} — ⟦month⟧ planning (⟦city⟧)\n{}:{}{}\n",
        lab[0],
        lab[1],
        lead,
        present.join(sep)
    );
    if !away.is_empty() {
        t.push_str(&format!("{}: {}\n", lab[2], away.join(", ")));
    }
    t.push_str(&format!(
        "\n{}:\n- ⟦nameany1⟧: {}\n- ⟦nameany2⟧: {}\n",
        lab[3],
        c.r.pick(&[
            "send the deck by Friday",
            "Angebot bis ⟦reldate⟧",
            "relancer le client ⟦order⟧",
            "revisar el contrato",
            "aggiornare ⟦product⟧ a ⟦ver⟧"
        ]),
        c.r.pick(&[
            "book rooms in ⟦city2⟧",
            "check invoice ⟦inv⟧",
            "follow up on ticket ⟦ticket⟧"
        ])
    ));
    c.fill(&t)
}

// ------------------------------------------------------------------ forms (HR, medical, KYC)

pub const FORMS: [&[&str]; 6] = [
    &[
        "NEW HIRE FORM\nFull name: ⟦name⟧\nDate of birth: ⟦dob⟧\nSSN: ⟦ssn⟧\nHome address: ⟦addr⟧, ⟦acity⟧\nPhone: ⟦usphone⟧\nEmergency contact: ⟦name2⟧, ⟦mobile2⟧\nStart date: ⟦reldate⟧",
        "Patient: ⟦nameup⟧\nDOB: ⟦dob⟧\nAddress: ⟦addr⟧\nReferring physician: Dr. ⟦name2⟧\nNotes: follow-up in ⟦month⟧, labs ordered ⟦tsdmy⟧.",
        "W-9 request\nLegal name: ⟦namerev⟧\nTIN/SSN: ⟦ssn⟧\nMailing address: ⟦addr⟧, ⟦acity⟧\nEmail: ⟦email⟧",
        "Tenant application\nApplicant: ⟦name⟧ (born ⟦dob⟧)\nCurrent address: ⟦addr⟧, ⟦acity⟧\nEmployer: ⟦company⟧\nPhone: ⟦phone⟧\nSocial security number: ⟦ssn⟧",
    ],
    &[
        "Personalbogen\nName, Vorname: ⟦namerev⟧\nGeburtsdatum: ⟦dob⟧\nAnschrift: ⟦addr⟧, ⟦acity⟧\nTelefon: ⟦phone⟧\nBankverbindung: ⟦iban⟧\nEintrittsdatum: ⟦reldate⟧",
        "Patientin: ⟦nameup⟧, geb. am ⟦dob⟧\nWohnhaft: ⟦addr⟧, ⟦acity⟧\nHausarzt: Dr. med. ⟦name2⟧\nBefund vom ⟦tsdmy⟧: unauffällig.",
        "Mietinteressent: ⟦name⟧\ngeboren: ⟦dob⟧\nderzeitige Adresse: ⟦addr⟧\nE-Mail: ⟦email⟧, Mobil: ⟦mobile⟧",
    ],
    &[
        "Fiche patient\nNom : ⟦nameup⟧\nDate de naissance : ⟦dob⟧\nAdresse : ⟦addr⟧ ⟦acity⟧\nTél : ⟦phone⟧\nMédecin traitant : Dr ⟦name2⟧",
        "Dossier locataire\nNom et prénom : ⟦name⟧\nNé(e) le : ⟦dob⟧\nAdresse actuelle : ⟦addr⟧, ⟦acity⟧\nIBAN : ⟦iban⟧",
        "Fiche salarié — ⟦namerev⟧, née le ⟦dob⟧, domiciliée ⟦addr⟧, ⟦acity⟧. Contact : ⟦email⟧.",
    ],
    &[
        "Ficha de empleado\nNombre y apellidos: ⟦name⟧\nFecha de nacimiento: ⟦dob⟧\nDomicilio: ⟦addr⟧, ⟦acity⟧\nTeléfono: ⟦phone⟧\nCuenta: ⟦iban⟧",
        "Paciente: ⟦nameup⟧, nacida el ⟦dob⟧. Domicilio: ⟦addr⟧. Médico: Dr. ⟦name2⟧.",
    ],
    &[
        "Scheda dipendente\nCognome e nome: ⟦namerev⟧\nData di nascita: ⟦dob⟧\nResidenza: ⟦addr⟧, ⟦acity⟧\nTelefono: ⟦phone⟧\nIBAN: ⟦iban⟧",
        "Paziente: ⟦nameup⟧, nato il ⟦dob⟧, residente in ⟦addr⟧. Medico curante: dott. ⟦name2⟧.",
    ],
    &[
        "Personeelsformulier\nNaam: ⟦name⟧\nGeboortedatum: ⟦dob⟧\nAdres: ⟦addr⟧, ⟦acity⟧\nTelefoon: ⟦phone⟧\nRekeningnummer: ⟦iban⟧",
        "Patiënt: ⟦nameup⟧, geboren op ⟦dob⟧, woonachtig ⟦addr⟧. Huisarts: dr. ⟦name2⟧.",
    ],
];

// ------------------------------------------------------------------ chat prose

pub const CHATS: [&[&str]; 6] = [
    &[
        "Can you write a cover letter for me? My name is ⟦name⟧, I live at ⟦addr⟧, ⟦acity⟧ and my phone number is ⟦phone⟧. I was born on ⟦dob⟧ and have 8 years of experience with ⟦product⟧.",
        "My friend ⟦name2⟧ and I are flying to ⟦city⟧ in ⟦month⟧. Draft a message to the hotel: booking under ⟦email2⟧, card ⟦card⟧ for the deposit.",
        "Translate to German: \"Hi ⟦given⟧, the package for ⟦addr⟧ is ready. Call me at ⟦mobile⟧.\"",
        "rewrite this more politely: ⟦name⟧ still hasn't paid invoice ⟦inv⟧, her IBAN is ⟦iban⟧ and email ⟦email⟧",
        "Fill in this W-4 for me: ⟦name⟧, SSN ⟦ssn⟧, ⟦addr⟧, ⟦acity⟧, phone ⟦usphone⟧.",
        "I'm ⟦name⟧, date of birth ⟦dob⟧, SSN ⟦ssn⟧. Which tax form do I need if I moved from ⟦city⟧ in ⟦month⟧?",
    ],
    &[
        "Kannst du ein Anschreiben für mich verfassen? Ich heiße ⟦name⟧, wohne in der ⟦addr⟧, ⟦acity⟧, Telefon ⟦phone⟧, geboren am ⟦dob⟧.",
        "Formuliere eine Mahnung an ⟦name⟧ (⟦email⟧) wegen Rechnung ⟦inv⟧. Zahlung bitte auf ⟦iban⟧.",
        "Mein Kollege ⟦name2⟧ fliegt im ⟦month⟧ nach ⟦city⟧, seine Handynummer ist ⟦mobile2⟧. Schreib ihm eine kurze Nachricht.",
    ],
    &[
        "Peux-tu rédiger une lettre de motivation ? Je m'appelle ⟦name⟧, j'habite au ⟦addr⟧, ⟦acity⟧, tél. ⟦phone⟧, née le ⟦dob⟧.",
        "Écris une relance polie à ⟦name⟧ (⟦email⟧) pour la facture ⟦inv⟧, à régler sur ⟦iban⟧.",
        "Mon ami ⟦name2⟧ part à ⟦city⟧ en ⟦month⟧ ; son numéro est le ⟦mobile2⟧. Rédige-lui un message.",
    ],
    &[
        "¿Puedes redactar una carta de presentación? Me llamo ⟦name⟧, vivo en ⟦addr⟧, ⟦acity⟧, teléfono ⟦phone⟧, fecha de nacimiento ⟦dob⟧.",
        "Escribe un recordatorio a ⟦name⟧ (⟦email⟧) por la factura ⟦inv⟧; el pago a ⟦iban⟧.",
        "Mi compañera ⟦name2⟧ viaja a ⟦city⟧ en ⟦month⟧, su móvil es ⟦mobile2⟧. Escríbele un mensaje.",
    ],
    &[
        "Puoi scrivere una lettera di presentazione? Mi chiamo ⟦name⟧, abito in ⟦addr⟧, ⟦acity⟧, telefono ⟦phone⟧, data di nascita ⟦dob⟧.",
        "Scrivi un sollecito a ⟦name⟧ (⟦email⟧) per la fattura ⟦inv⟧, da pagare su ⟦iban⟧.",
        "Il mio collega ⟦name2⟧ va a ⟦city⟧ a ⟦month⟧, il suo cellulare è ⟦mobile2⟧. Scrivigli un messaggio.",
    ],
    &[
        "Kun je een sollicitatiebrief schrijven? Ik heet ⟦name⟧, woon op ⟦addr⟧, ⟦acity⟧, telefoon ⟦phone⟧, geboortedatum ⟦dob⟧.",
        "Schrijf een herinnering aan ⟦name⟧ (⟦email⟧) voor factuur ⟦inv⟧, te betalen op ⟦iban⟧.",
        "Mijn collega ⟦name2⟧ gaat in ⟦month⟧ naar ⟦city⟧, zijn nummer is ⟦mobile2⟧. Schrijf hem een berichtje.",
    ],
];

// ------------------------------------------------------------------ look-alikes only

pub const LOOKALIKE: &[&str] = &[
    "## ⟦ver⟧ (released ⟦reldate⟧)\n- Fixed a crash in the ⟦=task-runner⟧ when job ⟦uuid⟧ was cancelled\n- Bumped the parser to ⟦ver2⟧ (⟦shortsha⟧)\n- Full build: ⟦sha⟧",
    "Order ⟦order⟧ confirmed. Invoice ⟦inv⟧, customer reference ⟦hashorder⟧, tracking number ⟦badluhn⟧. Expected delivery ⟦reldate⟧.",
    "Quick math check: 2^32 = ⟦=4294967296⟧ and π ≈ ⟦=3.14159⟧, so the ⟦=risk-adjusted⟧ return is 3.14159 × 0.8. Timestamp of the run: ⟦ts⟧.",
    "The service listens on ⟦loopback⟧ in dev and on ⟦port⟧ in prod; see docs at http://⟦loopback2⟧/docs. Image digest sha256:⟦digest⟧.",
    "Set OPENAI_API_KEY to ⟦placeholder_key⟧ and send a test mail to ⟦placeholder_email⟧. The docs use ⟦docip⟧ as the sample server.",
    "Palette: primary ⟦color⟧, accent ⟦color2⟧, text ⟦color3⟧. Last edited ⟦tsdmy⟧.",
    "References: ISBN ⟦isbn⟧ (2nd edition) and ISBN ⟦isbn2⟧. Both were reprinted in ⟦month⟧.",
    "Compare the ⟦product⟧ and the ⟦product2⟧ for our ⟦city⟧ and ⟦city2⟧ offices; budget approved ⟦reldate⟧.",
    "Please upgrade the agent to version ⟦verquad⟧; the old one (⟦ver⟧) fails on ⟦city⟧ hosts. Build id ⟦uuid⟧, commit ⟦shortsha⟧.",
    "Run `pip install ⟦=sk-learn⟧` fails, use scikit-learn. Our ⟦=desk-booking⟧ app and the ⟦skword⟧ module both log to ⟦loopback⟧.",
    "Flights: ⟦city⟧ → ⟦city2⟧ on ⟦reldate⟧, return ⟦reldate2⟧. Booking ref ⟦order⟧.",
    "Epoch ⟦epoch⟧ corresponds to ⟦ts⟧. The cron fires at 10:22 on ⟦tsdmy⟧.",
    "Meeting moved to ⟦month⟧; ⟦product⟧ licences renew ⟦reldate⟧. Trace id ⟦traceid⟧.",
];

pub fn lookalike(c: &mut Ctx) -> String {
    let n = c.r.range(1, 3);
    let mut parts = Vec::new();
    for _ in 0..n {
        parts.push(*c.r.pick(LOOKALIKE));
    }
    let t = parts.join("\n\n");
    c.fill(&t)
}
